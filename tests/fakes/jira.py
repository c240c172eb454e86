"""A stateful fake of the Jira REST v2 endpoints connbot uses, at the wire (`responses`).

It keeps comments, status, assignee, labels and components per issue, so idempotency can be
checked by what ends up on the issue, and records every request for assertions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses

URL = "https://example.atlassian.net"
# The account connbot's API token belongs to: GET /myself and the author of every comment it adds.
BOT_USER = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "connbot", "accountType": "atlassian"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class FakeIssue:
    comments: list[str] = field(default_factory=list)
    status: str = "To Do"
    resolution: str | None = None
    assignee: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    # The authors of comments not written by the bot's account, by their index in `comments`.
    foreign: dict[int, dict[str, Any]] = field(default_factory=dict)


TRANSITIONS = [
    {"id": "11", "name": "In Progress", "to": {"name": "In Progress"}, "fields": {}},
    {"id": "31", "name": "Done", "to": {"name": "Done"}, "fields": {"resolution": {"required": False}}},
]


class FakeJira:
    """Register on a `responses.RequestsMock`; `issues` is the state, `calls` what was asked."""

    def __init__(
        self, rsps: responses.RequestsMock, url: str = URL, search: list[dict[str, Any]] | None = None
    ):
        self.url = url
        self.issues: dict[str, FakeIssue] = {}
        self.search_results = search or []
        self.searches: list[str] = []
        api = re.escape(url) + r"/rest/api/2"
        rsps.add_callback(
            responses.GET, re.compile(api + r"/issue/([^/]+)/comment(\?.*)?$"), self._list_comments
        )
        rsps.add_callback(responses.POST, re.compile(api + r"/issue/([^/]+)/comment$"), self._add_comment)
        rsps.add_callback(
            responses.GET, re.compile(api + r"/issue/([^/]+)/transitions(\?.*)?$"), self._transitions
        )
        rsps.add_callback(responses.POST, re.compile(api + r"/issue/([^/]+)/transitions$"), self._transition)
        rsps.add_callback(responses.PUT, re.compile(api + r"/issue/([^/]+)/assignee$"), self._assign)
        rsps.add_callback(responses.PUT, re.compile(api + r"/issue/([^/?]+)$"), self._edit)
        rsps.add_callback(responses.GET, re.compile(api + r"/search(/jql)?(\?.*)?$"), self._search)
        rsps.add_callback(responses.GET, re.compile(api + r"/myself$"), self._myself)

    def issue(self, key: str) -> FakeIssue:
        return self.issues.setdefault(key, FakeIssue())

    @staticmethod
    def _key(request: Any) -> str:
        return str(request.path_url.split("/issue/")[1].split("/")[0].split("?")[0])

    def _list_comments(self, request: Any) -> tuple[int, dict[str, str], str]:
        comments = self.issue(self._key(request)).comments
        start = int(request.params.get("startAt", 0))
        size = int(request.params.get("maxResults", 50))
        foreign = self.issue(self._key(request)).foreign
        page = [
            {"id": str(i), "body": b, "author": foreign.get(i, BOT_USER)} for i, b in enumerate(comments)
        ][start : start + size]
        return (
            200,
            {},
            json.dumps({"startAt": start, "maxResults": size, "total": len(comments), "comments": page}),
        )

    def _add_comment(self, request: Any) -> tuple[int, dict[str, str], str]:
        issue = self.issue(self._key(request))
        issue.comments.append(json.loads(request.body)["body"])
        return 201, {}, json.dumps({"id": str(len(issue.comments)), "body": issue.comments[-1]})

    def comment_as(self, key: str, author: dict[str, Any], body: str) -> None:
        """A comment someone else (a reporter, an agent) writes on the issue."""
        issue = self.issue(key)
        issue.foreign[len(issue.comments)] = author
        issue.comments.append(body)

    def _myself(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps(BOT_USER)

    def _transitions(self, request: Any) -> tuple[int, dict[str, str], str]:
        return 200, {}, json.dumps({"transitions": TRANSITIONS})

    def _transition(self, request: Any) -> tuple[int, dict[str, str], str]:
        issue, body = self.issue(self._key(request)), json.loads(request.body)
        chosen = next(t for t in TRANSITIONS if t["id"] == str(body["transition"]["id"]))
        issue.status = chosen["to"]["name"]
        issue.resolution = body.get("fields", {}).get("resolution", {}).get("name")
        issue.comments += [c["add"]["body"] for c in body.get("update", {}).get("comment", [])]
        return 204, {}, ""

    def _assign(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.issue(self._key(request)).assignee = json.loads(request.body)
        return 204, {}, ""

    def _edit(self, request: Any) -> tuple[int, dict[str, str], str]:
        issue, body = self.issue(self._key(request)), json.loads(request.body)
        update = body.get("update", {})
        issue.comments += [c["add"]["body"] for c in update.get("comment", [])]
        issue.labels += [c["add"] for c in update.get("labels", [])]
        issue.components += [c["add"]["name"] for c in update.get("components", [])]
        issue.fields.update(body.get("fields", {}))
        return 204, {}, ""

    def _search(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.searches.append(request.params["jql"])
        return 200, {}, json.dumps({"issues": self.search_results, "total": len(self.search_results)})


def configure(monkeypatch: Any, **extra: str) -> None:
    """Set Cloud Jira settings in the environment (plus `extra`, names without the CONNBOT_JIRA_ prefix)."""
    values = {
        "URL": URL,
        "EMAIL": "bot@example.com",
        "API_TOKEN": "api-token-not-real",
        "WEBHOOK_SECRET": "s3cret",
        "USER_FIELD": "customfield_10050",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(f"CONNBOT_JIRA_{name}", value)
