"""connbot's settings: environment variables prefixed `CONNBOT_`, optionally a config file.

`CONNBOT_CONFIG` names a file of `CONNBOT_NAME=value` lines (dotenv format); the same names
as the environment, which wins over the file. Each integration has its own settings section
in `integrations/<system>/settings.py`, loaded with `load()` below so that every section reads
the same file and reports errors the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import SettingsError

PREFIX = "CONNBOT_"


class Section(BaseSettings):
    """Base of every settings section: env prefix `CONNBOT_`, unknown names ignored."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_file=None)


S = TypeVar("S", bound=Section)


def config_file() -> str | None:
    path = os.environ.get(f"{PREFIX}CONFIG")
    if path and not Path(path).is_file():
        raise SettingsError(f"{PREFIX}CONFIG: no such file: {path}")
    return path or None


def load(cls: type[S], **overrides: object) -> S:
    """Build a settings section from the environment and the config file.

    A bad value raises `SettingsError` with one line per problem naming the variable.
    """
    try:
        return cls(_env_file=config_file(), **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(describe(exc, cls)) from None


def describe(exc: ValidationError, cls: type[BaseSettings]) -> str:
    prefix = cls.model_config.get("env_prefix", PREFIX)
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        info = cls.model_fields.get(field)
        name = (info.alias if info and info.alias else f"{prefix}{field}").upper()
        secret = info is not None and "SecretStr" in str(info.annotation)
        msg = err["msg"].removeprefix("Value error, ")
        got = "" if secret or err["type"] == "missing" else f" (got {err['input']!r})"
        lines.append(f"{name}: {msg}{got}")
    return "\n".join(lines)


class Settings(Section):
    """Core settings. Integration sections live beside their integrations."""

    data_dir: Path = Field(Path("data"), description="where the embedded SQLite files live")
    database_url: str = Field("", description="sqlite:///path or postgresql://...; default a file in data_dir")
    queue_url: str = Field("", description="redis://... or sqlite:///path; default a file in data_dir")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    playbook: Path | None = None
    lease_seconds: float = Field(300, gt=0, description="how long a worker may hold a run before another may take it over")
    sweep_seconds: float = Field(15, gt=0, description="how often a worker looks for runs to resume and prompts to expire")
    step_attempts: int = Field(3, ge=1, description="attempts at a step whose outside system keeps failing (after the transport's own retries) before its failure edge is taken")
    effect_attempts: int = Field(10, ge=1, description="attempts at a comment, close, escalation or Slack post before it is failed for good")
    worker_threads: int = Field(4, ge=1, le=64)
    log_level: str = "INFO"
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    public_url: str = Field("http://127.0.0.1:8080", description="how people reach the desk; used in links")
    admin_token: SecretStr | None = None

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


def load_settings(**overrides: object) -> Settings:
    return load(Settings, **overrides)
