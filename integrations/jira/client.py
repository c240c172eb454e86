"""The wire boundary to Jira: the `jira` package, talking through connbot's one retry policy.

The `jira` package's own retry loop is switched off (`max_retries=0`) and its session replaced by
`PolicySession`, which sends every request through `integrations.http.request` (429/503 honour
`Retry-After` as a minimum, exponential backoff with jitter, bounded total time) and translates
error answers here and only here: 4xx other than 429 become `PermanentError` carrying Jira's
message, 5xx and exhausted retries `TransientError`.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from jira import JIRA
from jira.resilientsession import parse_error_msg

from integrations import http
from integrations.base import PermanentError, TransientError
from integrations.jira.settings import JiraSettings

PAGE = 100
# The comment property Jira Service Management reads (Cloud and Data Center alike): `internal: true`
# makes a comment an internal note that customers never see; without it a comment is public.
SD_PUBLIC = "sd.public.comment"


def comment_body(body: str, internal: bool) -> dict[str, Any]:
    """A comment as the REST body takes it, on its own or inside `update.comment[].add`."""
    data: dict[str, Any] = {"body": body}
    if internal:
        data["properties"] = [{"key": SD_PUBLIC, "value": {"internal": True}}]
    return data


class _Plain:
    """Gives `http.request` the session's plain `requests` send, without the policy around it."""

    def __init__(self, session: requests.Session):
        self.session = session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return requests.Session.request(self.session, method, url, **kwargs)


class PolicySession(requests.Session):
    """The session the `jira` package uses: every request under connbot's retry policy."""

    def __init__(self, policy: http.RetryPolicy):
        super().__init__()
        self.policy = policy
        self.max_retries = 0  # read by the jira package; the policy does the retrying

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.pop("_prepare_retry_class", None)
        if isinstance(kwargs.get("data"), dict):
            kwargs["data"] = json.dumps(kwargs["data"])
        method_s = method.decode() if isinstance(method, bytes) else method
        url_s = url.decode() if isinstance(url, bytes) else url
        resp = http.request(_Plain(self), method_s, url_s, self.policy, service="Jira", **kwargs)
        if resp.status_code >= 400:
            what = f"Jira answered HTTP {resp.status_code} to {method_s.upper()} {url_s.split('?')[0]}"
            detail = parse_error_msg(resp) or resp.text[:300].strip()
            error = TransientError if resp.status_code >= 500 else PermanentError
            raise error(f"{what}: {detail}" if detail else what, resp.status_code)
        return resp


def user_id(user: dict[str, Any]) -> str:
    """A Jira user's stable id: accountId (Cloud), else key, else name (Server/Data Center)."""
    return str(user.get("accountId") or user.get("key") or user.get("name") or "")


class JiraClient:
    """The few Jira calls connbot makes, by issue key, with plain data in and out."""

    def __init__(self, settings: JiraSettings, policy: http.RetryPolicy | None = None):
        self.settings = settings
        self.cloud = settings.cloud
        if settings.pat is not None:
            auth: dict[str, Any] = {"token_auth": settings.pat.get_secret_value()}
        else:
            assert settings.api_token is not None
            auth = {"basic_auth": (settings.email, settings.api_token.get_secret_value())}
        self.jira = JIRA(
            server=settings.url,
            get_server_info=False,
            validate=False,
            max_retries=0,
            options={"check_update": False, "rest_api_version": "2"},
            **auth,
        )
        session = PolicySession(policy or http.RetryPolicy())
        session.auth = self.jira._session.auth
        session.headers.update(self.jira._session.headers)
        # The jira package types its session as its own ResilientSession; ours replaces it on purpose.
        self.jira._session = session  # type: ignore[assignment]
        self.jira.deploymentType = "Cloud" if self.cloud else "Server"
        self._me: str | None = None
        self._locales: dict[str, str | None] = {}

    def browse_url(self, key: str) -> str:
        return f"{self.settings.url}/browse/{key}"

    def myself(self) -> str:
        """Who connbot writes as: the accountId on Cloud, the user key (else name) on Server (asked once)."""
        if self._me is None:
            self._me = user_id(self.jira._get_json("myself"))
        return self._me

    def locale(self, user: str) -> str | None:
        """A user's locale (asked once per user): by accountId on Cloud, by user name on Server/Data
        Center. None when Jira does not say (the user's privacy settings) or does not show the user."""
        if user not in self._locales:
            params = {"accountId": user} if self.cloud else {"username": user}
            try:
                found = self.jira._get_json("user", params=params).get("locale")
            except PermanentError:
                found = None
            self._locales[user] = str(found) if found else None
        return self._locales[user]

    def own_comment_bodies(self, key: str) -> list[str]:
        """The body of every comment connbot's own account wrote on the issue, oldest first (all pages)."""
        me = self.myself()
        bodies: list[str] = []
        seen = 0
        while True:
            page = self.jira._get_json(f"issue/{key}/comment", params={"startAt": seen, "maxResults": PAGE})
            got = page.get("comments", [])
            seen += len(got)
            bodies += [str(c.get("body") or "") for c in got if user_id(c.get("author") or {}) == me]
            if not got or seen >= int(page.get("total", 0)):
                return bodies

    def add_comment(self, key: str, body: str, internal: bool = False) -> None:
        self._post(f"issue/{key}/comment", comment_body(body, internal))

    def _post(self, path: str, body: dict[str, Any]) -> None:
        self.jira._session.post(self.jira._get_url(path), data=json.dumps(body))

    def transitions(self, key: str) -> list[dict[str, Any]]:
        """The transitions open to the bot on the issue, with the fields each one's screen takes."""
        return list(self.jira.transitions(key, expand="transitions.fields"))

    def transition(
        self, key: str, transition_id: str, fields: dict[str, Any], comment: str, internal: bool = False
    ) -> None:
        """Transition, set fields and comment in one request (atomic in Jira)."""
        self._post(
            f"issue/{key}/transitions",
            {
                "transition": {"id": transition_id},
                "fields": fields,
                "update": {"comment": [{"add": comment_body(comment, internal)}]},
            },
        )

    def assign(self, key: str, assignee: str) -> None:
        """Assign by accountId on Cloud, by user name on Server/Data Center."""
        payload = {"accountId": assignee} if self.cloud else {"name": assignee}
        self.jira._session.put(self.jira._get_url(f"issue/{key}/assignee"), data=json.dumps(payload))

    def edit(self, key: str, fields: dict[str, Any], update: dict[str, Any]) -> None:
        """Set fields and apply updates (labels, components, a comment) in one request."""
        body: dict[str, Any] = {"update": update}
        if fields:
            body["fields"] = fields
        self.jira._session.put(self.jira._get_url(f"issue/{key}"), data=json.dumps(body))

    def create_issue(self, project: str, issue_type: str, summary: str, description: str, label: str) -> str:
        """Create an issue; its key."""
        fields = {
            "project": {"key": project},
            "issuetype": {"name": issue_type},
            "summary": summary,
            "description": description,
            "labels": [label],
        }
        resp = self.jira._session.post(self.jira._get_url("issue"), data=json.dumps({"fields": fields}))
        return str(resp.json()["key"])

    def linked_keys(self, key: str) -> set[str]:
        """The keys of the issues linked to the issue, either way."""
        links = self.jira._get_json(f"issue/{key}", params={"fields": "issuelinks"})["fields"]["issuelinks"]
        return {str(li.get(f"{way}Issue", {}).get("key")) for li in links for way in ("inward", "outward")}

    def link_issues(
        self, link_type: str, inward: str, outward: str, comment: str | None = None, internal: bool = False
    ) -> None:
        """Link two issues; a comment goes on the "from" (outward) issue in the same request."""
        body: dict[str, Any] = {
            "type": {"name": link_type},
            "inwardIssue": {"key": inward},
            "outwardIssue": {"key": outward},
        }
        if comment:
            body["comment"] = comment_body(comment, internal)
        self.jira._session.post(self.jira._get_url("issueLink"), data=json.dumps(body))

    def search(self, jql: str, limit: int = 500) -> list[dict[str, Any]]:
        """Raw issues matching a JQL query, up to `limit` (Cloud's /search/jql or Server's /search)."""
        issues: list[dict[str, Any]] = []
        token: str | None = None
        while len(issues) < limit:
            params: dict[str, Any] = {
                "jql": jql,
                "fields": "*all",
                "maxResults": min(PAGE, limit - len(issues)),
            }
            if self.cloud:
                if token:
                    params["nextPageToken"] = token
                page = self.jira._get_json("search/jql", params=params)
            else:
                params["startAt"] = len(issues)
                page = self.jira._get_json("search", params=params)
            got = page.get("issues", [])
            issues += got
            token = page.get("nextPageToken")
            more = token if self.cloud else len(issues) < int(page.get("total", 0))
            if not got or not more:
                break
        return issues
