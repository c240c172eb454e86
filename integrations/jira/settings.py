"""Jira settings: `CONNBOT_JIRA_*`. Lists take comma-separated values or a JSON array.

Cloud authenticates with `CONNBOT_JIRA_EMAIL` + `CONNBOT_JIRA_API_TOKEN`, Server/Data Center with
`CONNBOT_JIRA_PAT`. Escalation targets are a JSON object keyed by level, e.g.
`{"2": {"assignee": "5b10ac8d82e05b22cc7d4ef5", "components": ["Voice L2"]}}`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from integrations.settings import Section

DEFAULT_KEYWORDS = [
    "can't connect",
    "cannot connect",
    "can not connect",
    "cant connect",
    "unable to connect",
    "won't connect",
    "doesn't connect",
    "does not connect",
    "fails to connect",
    "failed to connect",
    "connection failed",
    "connection failure",
    "connection problem",
    "connection issue",
    "connection error",
    "no connection",
    "disconnected",
    "keeps disconnecting",
    "offline",
    "registration failed",
    "not registered",
    "unregistered",
    "no service",
    "cannot register",
    "can't register",
]

Words = Annotated[list[str], NoDecode]


class EscalationTarget(BaseModel):
    """Where a level's tickets go: an assignee and/or field changes, all optional."""

    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(default="", description="accountId on Cloud, user name on Server/Data Center")
    components: list[str] = Field(default_factory=list, description="components to add")
    labels: list[str] = Field(default_factory=list, description="labels to add")
    request_type: str = Field(default="", description="Jira Service Management request type id")
    fields: dict[str, Any] = Field(
        default_factory=dict, description="other fields to set, e.g. a custom queue field"
    )


class JiraSettings(Section):
    model_config = SettingsConfigDict(env_prefix="CONNBOT_JIRA_", extra="ignore", env_file=None)

    url: str = Field("", description="Jira base URL, e.g. https://example.atlassian.net")
    email: str = Field("", description="Cloud: the bot account's e-mail")
    api_token: SecretStr | None = Field(None, description="Cloud: the bot account's API token")
    pat: SecretStr | None = Field(
        None, validate_default=True, description="Server/Data Center: a personal access token"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="secret the webhook signs with (X-Hub-Signature)"
    )
    webhook_token: SecretStr | None = Field(None, description="fallback: ?token= in the webhook URL")
    insecure_dev: bool = Field(
        False, description="accept unsigned webhooks when neither secret nor token is set"
    )
    resolved_status: str = Field("Done", description="the transition (or target status) that closes a ticket")
    resolution: str = Field("Done", description="resolution set on closing; empty for none")
    user_field: str = Field("", description="custom field holding the user's extension or SIP username")
    request_type_field: str = Field("customfield_10010", description="Service Management request type field")
    projects: Words = Field(default_factory=list)
    service_projects: Words = Field(
        default_factory=list,
        description="keys of Service Management projects, for webhooks that do not carry projectTypeKey",
    )
    issue_types: Words = Field(default_factory=list)
    request_types: Words = Field(default_factory=list)
    labels: Words = Field(default_factory=list)
    components: Words = Field(default_factory=list)
    keywords: Words = Field(default_factory=lambda: list(DEFAULT_KEYWORDS))
    patterns: Words = Field(default_factory=list, description="regular expressions on summary + description")
    escalation: dict[int, EscalationTarget] = Field(default_factory=dict)
    incident_project: str = Field(
        "", description="project key of the parent issue each incident gets (empty: no parent issue)"
    )
    incident_issue_type: str = Field("Task", description="issue type of an incident's parent issue")
    incident_link_type: str = Field(
        "Relates", description="the issue link type joining each incident ticket to its parent issue"
    )
    sla_first_response: str = Field(
        "Time to first response", description="the name of the SLA a first public reply stops"
    )
    sla_warn_minutes: float = Field(
        30, ge=0, description="how long before an SLA breach a waiting question is reminded of"
    )
    backfill_minutes: float = Field(5, gt=0, description="how often to search Jira for missed tickets")
    backfill_hours: float = Field(24, gt=0, description="how far back the first search looks")

    @field_validator(
        "projects",
        "service_projects",
        "issue_types",
        "request_types",
        "labels",
        "components",
        "keywords",
        "patterns",
        mode="before",
    )
    @classmethod
    def _words(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [w.strip() for w in text.split(",") if w.strip()]
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http(s):// URL")
        return value.rstrip("/")

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for p in value:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regular expression {p!r}: {exc}") from None
        return value

    @field_validator("pat")
    @classmethod
    def _auth(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Checked on `pat`, declared after url, email and api_token, so the error names a secret
        # setting and its message never echoes the values.
        data = info.data
        if data.get("url") and not (value or (data.get("email") and data.get("api_token"))):
            raise ValueError(
                "CONNBOT_JIRA_URL is set: also set CONNBOT_JIRA_EMAIL and CONNBOT_JIRA_API_TOKEN "
                "(Cloud) or CONNBOT_JIRA_PAT (Server/Data Center)"
            )
        return value

    @property
    def configured(self) -> bool:
        """True when connbot can call Jira."""
        return bool(self.url)

    @property
    def cloud(self) -> bool:
        """Cloud (e-mail + API token, users by accountId), not Server/Data Center (PAT, users by name)."""
        return self.pat is None

    @property
    def receiving(self) -> bool:
        """True when the webhook receiver is set up to accept deliveries."""
        return bool(self.webhook_secret or self.webhook_token or self.insecure_dev)
