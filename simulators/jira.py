"""Jira's REST API v2 as connbot uses it: comments, transitions, assignee, issue edits and search.

The state is a `Jira` of `Issue`s (comments, status, resolution, assignee, labels, components,
fields), so idempotency can be checked by what ends up on an issue; every JQL searched is kept.
Jira Service Management's comment visibility is kept too: a comment added (on its own, with a
transition, with an edit or with an issue link) with the property `sd.public.comment` =
`{"internal": true}` is an internal note, which a customer never sees in the portal
(`Issue.portal`); the comment resource says so as `jsdPublic` (Cloud platform spec, `Comment`).
Errors have Jira's shape, `{"errorMessages": [...], "errors": {...}}`, from the Cloud platform
spec (specs/jira/jira-cloud-platform-v3.bot-subset.json).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

SD_PUBLIC = "sd.public.comment"
TRANSITIONS: list[dict[str, Any]] = [
    {"id": "11", "name": "In Progress", "to": {"name": "In Progress"}, "fields": {}},
    {"id": "31", "name": "Done", "to": {"name": "Done"}, "fields": {"resolution": {"required": False}}},
]


@dataclass
class Issue:
    comments: list[str] = field(default_factory=list)
    status: str = "To Do"
    resolution: str | None = None
    assignee: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    # The authors of comments not written by the API token's account, by their index in `comments`.
    foreign: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: str = ""
    description: str = ""
    project: str = ""
    issue_type: str = ""
    # (link type, the other issue's key, "inward" or "outward"), in the order they were made
    links: list[tuple[str, str, str]] = field(default_factory=list)
    # The indices in `comments` of internal notes (Service Management), and every comment's properties.
    internal: set[int] = field(default_factory=set)
    properties: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def portal(self) -> list[str]:
        """The comments a customer sees on the request in the portal: the public ones."""
        return [body for i, body in enumerate(self.comments) if i not in self.internal]

    def add(self, comment: dict[str, Any]) -> None:
        """A comment as REST bodies give it: `body` and optional `properties` (EntityProperty)."""
        properties = list(comment.get("properties") or [])
        n = len(self.comments)
        self.comments.append(str(comment["body"]))
        if properties:
            self.properties[n] = properties
        if any(p["key"] == SD_PUBLIC and (p["value"] or {}).get("internal") is True for p in properties):
            self.internal.add(n)


@dataclass
class Jira:
    """The issues (created on first use, as if they existed), what search answers and the account
    the API token belongs to (`GET /myself`, the author of every comment added through the API)."""

    account: dict[str, Any] = field(
        default_factory=lambda: {
            "accountId": "5b10ac8d82e05b22cc7d4ef5",
            "displayName": "connbot",
            "accountType": "atlassian",
        }
    )
    issues: dict[str, Issue] = field(default_factory=dict)
    # the projects and issue types issues can be created in (`POST /issue`), and link types
    projects: dict[str, list[str]] = field(default_factory=lambda: {"OPS": ["Incident", "Task"]})
    link_types: list[str] = field(default_factory=lambda: ["Relates", "Blocks", "Duplicate"])
    # Users `GET /user` shows, by accountId (Cloud) or name (Server/Data Center), with their `locale`.
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    search_results: list[dict[str, Any]] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def issue(self, key: str) -> Issue:
        return self.issues.setdefault(key, Issue())

    def comment_as(self, key: str, author: dict[str, Any], body: str) -> None:
        """A comment someone else (a reporter, an agent) writes on the issue."""
        with self.lock:
            issue = self.issue(key)
            issue.foreign[len(issue.comments)] = author
            issue.comments.append(body)


def _error(status: int, *messages: str, **errors: str) -> Response:
    resp = jsonify(errorMessages=list(messages), errors=errors)
    resp.status_code = status
    return resp


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _by_fields(jira: Jira, jql: str) -> list[dict[str, Any]] | None:
    """The issues a JQL of `project = "P" AND labels = "L"` clauses finds among the created ones; None
    for any other query (answered with `search_results`)."""
    clauses = [c.strip() for c in jql.split(" AND ")]
    wanted = [re.fullmatch(r'(project|labels) = "([^"]*)"', c) for c in clauses]
    if not all(wanted):
        return None
    found = []
    for key, issue in jira.issues.items():
        have = {"project": [issue.project], "labels": issue.labels}
        if all(m is not None and m[2] in have[m[1]] for m in wanted):
            found.append({"key": key, "fields": {"summary": issue.summary, "labels": issue.labels}})
    return found


def _bad_comment(comment: Any) -> str | None:
    """What is wrong with a comment in a request body, as Jira would refuse it, or None."""
    if not isinstance(comment, dict) or not isinstance(comment.get("body"), str) or not comment["body"]:
        return "Comment body can not be empty!"
    properties = comment.get("properties", [])
    if not isinstance(properties, list) or not all(
        isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p and set(p) <= {"key", "value"}
        for p in properties
    ):
        return "Comment properties must be a list of {key, value} entity properties."
    return None


def _comments(update: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["add"] for c in update.get("comment", []) if isinstance(c, dict) and "add" in c]


def create(jira: Jira) -> Flask:
    """The REST API of `jira`, at `/rest/api/2/...`."""
    app = Flask(__name__)
    api = "/rest/api/2"

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return _error(404, "The requested resource could not be found.")

    @app.errorhandler(405)
    def _not_allowed(_exc: Exception) -> Response:
        return _error(405, "Method not allowed.")

    @app.get(f"{api}/issue/<key>/comment")
    def list_comments(key: str) -> Response:
        with jira.lock:
            issue = jira.issue(key)
            comments = issue.comments
            start = request.args.get("startAt", 0, type=int)
            size = request.args.get("maxResults", 50, type=int)
            page = [
                {
                    "id": str(i),
                    "body": b,
                    "author": issue.foreign.get(i, jira.account),
                    "jsdPublic": i not in issue.internal,
                    "properties": issue.properties.get(i, []),
                }
                for i, b in enumerate(comments)
            ][start : start + size]
            return jsonify(startAt=start, maxResults=size, total=len(comments), comments=page)

    @app.post(f"{api}/issue/<key>/comment")
    def add_comment(key: str) -> Response:
        body = _body()
        problem = _bad_comment(body)
        if problem:
            return _error(400, comment=problem)
        with jira.lock:
            issue = jira.issue(key)
            issue.add(body)
            resp = jsonify(id=str(len(issue.comments) - 1), body=body["body"])
        resp.status_code = 201
        return resp

    @app.get(f"{api}/user")
    def user() -> Response:
        wanted = request.args.get("accountId") or request.args.get("username") or request.args.get("key")
        if not wanted:
            return _error(400, "The parameter accountId is required.")
        with jira.lock:
            found = jira.users.get(wanted)
        if found is None:
            return _error(404, "Specified user does not exist or you do not have required permissions")
        return jsonify(found)

    @app.get(f"{api}/myself")
    def myself() -> Response:
        return jsonify(jira.account)

    @app.get(f"{api}/issue/<key>/transitions")
    def transitions(key: str) -> Response:
        return jsonify(transitions=TRANSITIONS)

    @app.post(f"{api}/issue/<key>/transitions")
    def transition(key: str) -> Response:
        body = _body()
        wanted = str((body.get("transition") or {}).get("id", ""))
        chosen = next((t for t in TRANSITIONS if t["id"] == wanted), None)
        if chosen is None:
            return _error(400, f"Transition id '{wanted}' is not valid for this issue.")
        comments = _comments(body.get("update") or {})
        problem = next(filter(None, map(_bad_comment, comments)), None)
        if problem:
            return _error(400, comment=problem)
        with jira.lock:
            issue = jira.issue(key)
            issue.status = str(chosen["to"]["name"])
            issue.resolution = (body.get("fields") or {}).get("resolution", {}).get("name")
            for comment in comments:
                issue.add(comment)
        return Response(status=204)

    @app.put(f"{api}/issue/<key>/assignee")
    def assign(key: str) -> Response:
        with jira.lock:
            jira.issue(key).assignee = _body()
        return Response(status=204)

    @app.put(f"{api}/issue/<key>")
    def edit(key: str) -> Response:
        body = _body()
        update = body.get("update") or {}
        comments = _comments(update)
        problem = next(filter(None, map(_bad_comment, comments)), None)
        if problem:
            return _error(400, comment=problem)
        with jira.lock:
            issue = jira.issue(key)
            for comment in comments:
                issue.add(comment)
            issue.labels += [c["add"] for c in update.get("labels", [])]
            issue.components += [c["add"]["name"] for c in update.get("components", [])]
            issue.fields.update(body.get("fields") or {})
        return Response(status=204)

    @app.post(f"{api}/issue")
    def create_issue() -> Response:
        fields = _body().get("fields") or {}
        project = (fields.get("project") or {}).get("key", "")
        kind = (fields.get("issuetype") or {}).get("name", "")
        errors = {}
        if project not in jira.projects:
            errors["project"] = "valid project is required"
        elif kind not in jira.projects[project]:
            errors["issuetype"] = "The issue type selected is invalid."
        if not str(fields.get("summary") or "").strip():
            errors["summary"] = "You must specify a summary of the issue."
        if errors:
            return _error(400, **errors)
        with jira.lock:
            key = f"{project}-{sum(1 for k in jira.issues if k.startswith(project + '-')) + 1}"
            jira.issues[key] = Issue(
                summary=str(fields["summary"]),
                description=str(fields.get("description") or ""),
                labels=list(fields.get("labels") or []),
                project=project,
                issue_type=kind,
            )
        link = f"{request.host_url}{api[1:]}/issue/{key}"
        resp = jsonify({"id": str(10000 + len(jira.issues)), "key": key, "self": link})
        resp.status_code = 201
        return resp

    @app.get(f"{api}/issue/<key>")
    def get_issue(key: str) -> Response:
        with jira.lock:
            issue = jira.issue(key)
            links = [
                {"type": {"name": kind}, f"{way}Issue": {"key": other}} for kind, other, way in issue.links
            ]
            return jsonify(
                key=key, fields={"summary": issue.summary, "issuelinks": links, "labels": issue.labels}
            )

    @app.post(f"{api}/issueLink")
    def link_issues() -> Response:
        body = _body()
        kind = (body.get("type") or {}).get("name", "")
        inward = (body.get("inwardIssue") or {}).get("key")
        outward = (body.get("outwardIssue") or {}).get("key")
        if kind not in jira.link_types:
            return _error(404, f"No issue link type with name '{kind}' found.")
        if not inward or not outward:
            return _error(400, "Both an inward and an outward issue are required.")
        comment = body.get("comment")
        problem = _bad_comment(comment) if comment is not None else None
        if problem:
            return _error(400, comment=problem)
        with jira.lock:
            # As Jira documents it: a request that duplicates a link answers "created" and makes no
            # second link, but its comment (on the "from", outward issue) is added every time.
            if (kind, inward, "outward") not in jira.issue(outward).links:
                jira.issue(outward).links.append((kind, inward, "outward"))
                jira.issue(inward).links.append((kind, outward, "inward"))
            if comment is not None:
                jira.issue(outward).add(comment)
        return Response(status=201)

    @app.get(f"{api}/search")
    @app.get(f"{api}/search/jql")
    def search() -> Response:
        jql = request.args.get("jql")
        if jql is None:
            return _error(400, "The 'jql' query parameter is required.")
        with jira.lock:
            jira.searches.append(jql)
            found = _by_fields(jira, jql)
            issues = jira.search_results if found is None else found
            return jsonify(issues=issues, total=len(issues))

    return app
