"""connbot's core settings (`CONNBOT_*`). The base every section shares, the config file and the
error reporting live in `integrations.settings`; each integration's section beside it."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, SecretStr, field_validator

from integrations.settings import Section, load

MIN_TOKEN = 16  # characters of CONNBOT_ADMIN_TOKEN


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """The embedded store's folder when CONNBOT_DATA_DIR is not set: the same from any current folder."""
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "connbot"


class Settings(Section):
    """Core settings. Integration sections live beside their integrations."""

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(os.environ),
        description="where the embedded SQLite files live (default: see default_data_dir)",
    )
    database_url: str = Field(
        "", description="sqlite:///path or postgresql://...; default a file in data_dir"
    )
    queue_url: str = Field("", description="redis://... or sqlite:///path; default a file in data_dir")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    playbook: FilePath | None = None
    diagnosis_rules: FilePath | None = Field(
        None, description="a team's diagnosis rules file: its causes extend (or override) the shipped ones"
    )
    diagnosis_rules_replace: bool = Field(
        False, description="the team's rules file replaces the shipped rules instead of extending them"
    )
    replies: FilePath | None = Field(
        None, description="a team's reply templates file: its templates replace the shipped ones by language"
    )
    replies_language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}$",
        description="the customer replies' language when the reporter's is unknown",
    )
    lease_seconds: float = Field(
        300, gt=0, description="how long a worker may hold a run before another may take it over"
    )
    sweep_seconds: float = Field(
        15, gt=0, description="how often a worker looks for runs to resume and prompts to expire"
    )
    step_attempts: int = Field(
        3,
        ge=1,
        description="attempts at a step whose outside system keeps failing (after the transport's own "
        "retries) before its failure edge is taken",
    )
    effect_attempts: int = Field(
        10,
        ge=1,
        description="attempts at a comment, close, escalation or Slack post before it is failed for good",
    )
    incidents: bool = Field(
        True, description="join the tickets of a failing PBX into one incident (README, Incidents)"
    )
    incident_threshold: int = Field(
        5,
        ge=0,
        description="tickets of one PBX whose apps report the same error within the window that open an "
        "incident (0: never by count)",
    )
    incident_window_minutes: float = Field(10, gt=0, description="the window of CONNBOT_INCIDENT_THRESHOLD")
    incident_check_seconds: float = Field(
        30, gt=0, description="first re-check of a failing PBX; the wait doubles after each failed check"
    )
    incident_check_max_seconds: float = Field(300, gt=0, description="the longest wait between re-checks")
    incident_batch: int = Field(
        20, ge=1, le=200, description="apps re-checked at once when a PBX is back (the app backend's load)"
    )
    incident_remind_minutes: float = Field(
        30, gt=0, description="how often the incident's Slack thread is reminded while it is open"
    )
    health_check_seconds: float = Field(
        60, ge=0, description="how often every PBX is checked, to open incidents before tickets (0: never)"
    )
    worker_threads: int = Field(4, ge=1, le=64)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text", description="text, or json: one JSON object a line with the run, ticket, step and PBX"
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    body_seconds: float = Field(
        10, gt=0, description="how long a client may take to send a request body before it is answered 408"
    )
    otel_endpoint: str = Field(
        "",
        description="an OTLP/HTTP collector (http://host:4318) to send traces to; needs the otel extra",
    )
    public_url: str = Field("http://127.0.0.1:8080", description="how people reach the desk; used in links")
    admin_token: SecretStr | None = Field(None, description=f"at least {MIN_TOKEN} characters")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite://", "redis://", "rediss://")):
            raise ValueError("expected a redis:// or sqlite:/// URL")
        return value

    @field_validator("otel_endpoint")
    @classmethod
    def _otel_endpoint(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected the collector's OTLP/HTTP URL, http://host:4318")
        if value and not _installed("opentelemetry.exporter.otlp.proto.http"):
            raise ValueError("tracing needs OpenTelemetry: pip install 'connbot[otel]'")
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value) < MIN_TOKEN:
            raise ValueError(
                f"has {len(value)} characters; it needs at least {MIN_TOKEN} "
                "(make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url or f"sqlite:///{self.data_dir / 'connbot.db'}"
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def queue_target(self) -> str:
        return self.queue_url or f"sqlite:///{self.data_dir / 'queue.db'}"

    @property
    def embedded(self) -> bool:
        """True when state lives in local SQLite files."""
        return self.sqlalchemy_url.startswith("sqlite")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def load_settings(environ: Mapping[str, str] = os.environ, /, **overrides: object) -> Settings:
    """The core settings from `overrides`, then `environ`, then the config file it names."""
    return load(Settings, environ, **overrides)
