"""Jira webhook payloads (Cloud and Server/Data Center) as typed models; extra fields are kept.

Only what connbot reads is declared. Cloud identifies users by `accountId`, Server/Data Center by
`name`/`key`; both may carry `emailAddress`. Custom fields stay in `IssueFields.model_extra`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from integrations.tickets import SlaClock

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


class IssueKey(BaseModel):
    key: str = Field(min_length=1, max_length=64)


class Issue(IssueKey, _Open):
    id: str | None = None
    fields: IssueFields = Field(default_factory=IssueFields)


class Delivery(BaseModel):
    """What the receiver reads of a delivery before it stores the body: the event, the issue's key
    and `timestamp`, milliseconds since the epoch when Jira sent it: a JSON integer in every Jira's
    payloads, so `true`, `"1"` or `1.5` is refused, not read as one. The rest is read by the worker
    (`WebhookPayload`)."""

    model_config = ConfigDict(populate_by_name=True)
    timestamp: StrictInt
    webhook_event: str = Field(alias="webhookEvent", min_length=1, max_length=64)
    issue: IssueKey


class WebhookPayload(Delivery, _Open):
    """One delivery, as the worker reads it."""

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


def _millis(value: Any) -> float | None:
    """Seconds of a Service Management duration (`{"millis": 3600000, "friendly": "1h"}`)."""
    millis = value.get("millis") if isinstance(value, dict) else None
    if not isinstance(millis, (int, float)) or isinstance(millis, bool):
        return None
    return millis / 1000


def _instant(value: Any) -> dt.datetime | None:
    """A Service Management date (`{"epochMillis": 1720050511971, "iso8601": ...}`) in UTC."""
    seconds = _millis({"millis": value.get("epochMillis")}) if isinstance(value, dict) else None
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds is not None else None
    except (OverflowError, OSError, ValueError):
        return None


def sla_clocks(f: IssueFields, first_response: str, warn: dt.timedelta) -> list[SlaClock]:
    """The SLA fields of a Service Management issue: custom fields whose value has an `ongoingCycle`
    or `completedCycles` (the `SlaInformation` shape), each as a clock. `first_response` names the
    clock a first public reply stops; `warn` is how long before a breach it counts as near."""
    clocks = []
    for field_id, value in sorted((f.model_extra or {}).items()):
        if not isinstance(value, dict) or not ({"ongoingCycle", "completedCycles"} & set(value)):
            continue
        name = " ".join(str(value.get("name") or field_id).split())[:100]
        cycle = value.get("ongoingCycle")
        done = [c for c in value.get("completedCycles") or [] if isinstance(c, dict)]
        last = cycle if isinstance(cycle, dict) else (done[-1] if done else {})
        breach_at = _instant(last.get("breachTime")) if isinstance(cycle, dict) else None
        clocks.append(
            SlaClock(
                name=name,
                ongoing=isinstance(cycle, dict),
                paused=bool(last.get("paused")),
                breached=bool(last.get("breached")),
                breach_at=breach_at,
                remaining_seconds=_millis(last.get("remainingTime")),
                goal_seconds=_millis(last.get("goalDuration")),
                first_response=name.casefold() == first_response.casefold(),
                warn_at=breach_at - warn if breach_at is not None else None,
            )
        )
    return clocks
