"""The PBX directory: a YAML file (`CONNBOT_PBX_DIRECTORY`) of PBX instances and the rules that
route a ticket to one of them.

Each instance names where its secrets come from (environment variables), never the secrets. The
file is validated whole at start; every problem is reported on its own line naming the entry and
the field, as a `SettingsError` (the CLI exits 2).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, FilePath, ValidationError, field_validator, model_validator

from integrations import http
from integrations.jira.settings import EscalationTarget
from integrations.settings import Section, SettingsError
from playbook.errors import message

ENV = "CONNBOT_PBX_DIRECTORY"
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,54}$"  # room for "+remember" in a 64-character answer


class FleetSettings(Section):
    """`CONNBOT_PBX_DIRECTORY`: the directory file; unset means one PBX from the `CONNBOT_ARI_*` settings."""

    pbx_directory: FilePath | None = Field(
        None, description="YAML file listing the PBX instances and the routing rules"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Endpoint(_Strict):
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected an http(s)://host[:port] URL")
        return http.base_url(value, "")


class Ari(_Endpoint):
    username: str = Field(min_length=1)
    password_env: str = Field(min_length=1, description="environment variable holding the ARI password")
    verify: str = Field("true", description="TLS verification: true, false or a CA bundle path")


class Sip(_Strict):
    host: str = Field(min_length=1)
    port: int = Field(5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    domain: str = ""


class App(_Endpoint):
    token_env: str = Field(min_length=1, description="environment variable holding the API token")


class Rule(_Strict):
    """One routing rule: a ticket field, the reporter's e-mail domain, or a regex on the summary."""

    field: str | None = None
    email_domain: bool = False
    summary: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"email_domain": True} if value == "email_domain" else value

    @model_validator(mode="after")
    def _one(self) -> Rule:
        if sum((self.field is not None, self.email_domain, self.summary is not None)) != 1:
            raise ValueError("a rule is one of `field: NAME`, `email_domain` or `summary: REGEX`")
        if self.summary is not None:
            try:
                pattern = re.compile(self.summary)
            except re.error as exc:
                raise ValueError(f"bad regular expression {self.summary!r}: {exc}") from None
            if "customer" not in pattern.groupindex:
                raise ValueError(f"the regular expression {self.summary!r} has no (?P<customer>...) group")
        return self


class Instance(_Strict):
    """One PBX (one customer's Asterisk) with its app backend and overrides."""

    name: str = Field(pattern=NAME)
    customers: list[str] = Field(
        default_factory=list, description="customer keys: field values, e-mail domains"
    )
    ari: Ari
    sip: Sip
    db_url_env: str | None = None
    app: App | None = None
    slack_channel: str = ""
    escalation: dict[int, EscalationTarget] = Field(default_factory=dict)

    def secret_envs(self) -> list[tuple[str, str]]:
        """(field, variable) of every secret this instance reads from the environment."""
        pairs = [("ari.password_env", self.ari.password_env)]
        if self.db_url_env:
            pairs.append(("db_url_env", self.db_url_env))
        if self.app:
            pairs.append(("app.token_env", self.app.token_env))
        return pairs


def _default_routing() -> list[Rule]:
    return [Rule(email_domain=True)]


class Directory(_Strict):
    routing: list[Rule] = Field(default_factory=_default_routing)
    instances: list[Instance] = Field(min_length=1)

    def instance(self, name: str | None) -> Instance | None:
        return next((i for i in self.instances if i.name == name), None)

    def owner(self, key: str) -> Instance | None:
        """The instance that lists a customer key (compared case-insensitively)."""
        wanted = key.casefold()
        return next((i for i in self.instances if wanted in {c.casefold() for c in i.customers}), None)

    @property
    def fields(self) -> list[str]:
        """The ticket fields the routing rules read (intake keeps them on the ticket)."""
        return [r.field for r in self.routing if r.field]


def secret(variable: str, environ: Mapping[str, str]) -> str:
    """The value of a secret's environment variable (checked to be set when the directory was loaded)."""
    return environ[variable]


def _where(raw: Any, loc: tuple[Any, ...]) -> str:
    """`instance 'acme' (entry 2): ari.url` from a validation error's location."""
    if len(loc) >= 2 and loc[0] == "instances" and isinstance(loc[1], int):
        entries = raw.get("instances") if isinstance(raw, dict) else None
        entry = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"instance {name!r} (entry {loc[1] + 1})" if name else f"instance entry {loc[1] + 1}"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{label}: {rest or 'entry'}"
    if len(loc) >= 2 and loc[0] == "routing":
        return f"routing rule {int(loc[1]) + 1}" if isinstance(loc[1], int) else "routing"
    return ".".join(str(p) for p in loc) or "file"


def _entries(raw: Any) -> list[tuple[int, Instance]]:
    """The instance entries that are well formed on their own, numbered from 1: when the file as a
    whole is not, their problems (duplicates, unset secrets) are reported with its own."""
    entries = raw.get("instances") if isinstance(raw, dict) else None
    valid = []
    for n, entry in enumerate(entries if isinstance(entries, list) else [], 1):
        with contextlib.suppress(ValidationError):  # reported with the file's errors
            valid.append((n, Instance.model_validate(entry)))
    return valid


def _semantic(entries: list[tuple[int, Instance]], environ: Mapping[str, str]) -> list[str]:
    problems = []
    names: dict[str, int] = {}
    keys: dict[str, int] = {}
    for n, inst in entries:
        label = f"instance {inst.name!r} (entry {n})"
        if inst.name in names:
            problems.append(f"{label}: name: duplicate of entry {names[inst.name]}")
        names.setdefault(inst.name, n)
        for key in inst.customers:
            owner = keys.setdefault(key.casefold(), n)
            if owner != n:
                problems.append(f"{label}: customers: {key!r} is already a customer of entry {owner}")
        for field, variable in inst.secret_envs():
            if not environ.get(variable):
                problems.append(f"{label}: {field}: environment variable {variable} is not set")
    return problems


def parse(raw: Any, source: str, environ: Mapping[str, str] = os.environ) -> Directory:
    """Validate a directory's data (its secrets' variables set in `environ`); `SettingsError` lists
    every problem, one per line."""
    head = f"{ENV} ({source})"
    problems = []
    try:
        directory = Directory.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            msg = "unknown key" if err["type"] == "extra_forbidden" else message(err)
            problems.append(f"{_where(raw, tuple(err['loc']))}: {msg}")
        problems += _semantic(_entries(raw), environ)
    else:
        problems += _semantic(list(enumerate(directory.instances, 1)), environ)
    if problems:
        raise SettingsError("\n".join(f"{head}: {p}" for p in problems))
    return directory


def load_directory(path: Path, environ: Mapping[str, str] = os.environ) -> Directory:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{ENV} ({path}): cannot read the directory: {exc}") from None
    return parse(raw, str(path), environ)
