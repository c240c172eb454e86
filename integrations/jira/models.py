"""Jira webhook payloads (Cloud and Server/Data Center) as typed models; extra fields are kept.

Only what connbot reads is declared. Cloud identifies users by `accountId`, Server/Data Center by
`name`/`key`; both may carry `emailAddress`. Custom fields stay in `IssueFields.model_extra`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HANDLED_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated", "comment_created"})


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class JiraUser(_Open):
    account_id: str | None = Field(None, alias="accountId")
    name: str | None = None
    key: str | None = None
    email: str | None = Field(None, alias="emailAddress")
    display_name: str | None = Field(None, alias="displayName")

    @property
    def ident(self) -> str:
        """The best single identifier: e-mail, else accountId, else user name."""
        return self.email or self.account_id or self.name or self.key or ""


class Named(_Open):
    """Projects, issue types, components, statuses: whatever of id/key/name/value is there."""

    id: str | None = None
    key: str | None = None
    name: str | None = None
    value: str | None = None
    project_type: str | None = Field(None, alias="projectTypeKey")  # of a project: "service_desk", ...


class IssueFields(_Open):
    summary: str = ""
    description: str | None = None
    project: Named | None = None
    issuetype: Named | None = None
    status: Named | None = None
    labels: list[str] = Field(default_factory=list)
    components: list[Named] = Field(default_factory=list)
    reporter: JiraUser | None = None
    created: str | None = None

    def custom(self, field_id: str) -> Any:
        return (self.model_extra or {}).get(field_id)


class Issue(_Open):
    id: str | None = None
    key: str = Field(min_length=1, max_length=64)
    fields: IssueFields = Field(default_factory=IssueFields)


class WebhookPayload(_Open):
    """One delivery. `timestamp` is milliseconds since the epoch when Jira sent it."""

    timestamp: int
    webhook_event: str = Field(alias="webhookEvent", min_length=1, max_length=64)
    issue_event_type_name: str | None = None
    user: JiraUser | None = None
    issue: Issue
    comment: dict[str, Any] | None = None
    changelog: dict[str, Any] | None = None


def scalar(value: Any) -> str:
    """A custom field's value as text: plain values, option objects (`value`/`name`), first of a list."""
    if isinstance(value, list):
        return scalar(value[0]) if value else ""
    if isinstance(value, dict):
        for key in ("value", "name", "displayName", "key", "id"):
            if value.get(key):
                return str(value[key])
        return ""
    return "" if value is None else str(value).strip()


def request_type(value: Any) -> str:
    """The request type's name from a Service Management request type field (Cloud shape or plain)."""
    if isinstance(value, dict) and isinstance(value.get("requestType"), dict):
        return str(value["requestType"].get("name") or "")
    return scalar(value)


_BLOCK = re.compile(r"\{(code|noformat|quote)(?::[^}]*)?\}(.*?)\{\1\}", re.S | re.I)
_QUOTED_LINE = re.compile(r"^\s*(?:>|bq\.)\s?(.*)$", re.M)


def error_text(description: str | None) -> str:
    """Error text quoted in a description: `{code}`, `{noformat}`, `{quote}` blocks and `>`/`bq.` lines."""
    if not description:
        return ""
    parts = [m.group(2).strip() for m in _BLOCK.finditer(description)]
    rest = _BLOCK.sub("", description)
    parts += [m.group(1).strip() for m in _QUOTED_LINE.finditer(rest)]
    return "\n".join(p for p in parts if p)[:4000]
