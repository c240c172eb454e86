"""The settings base every section shares: environment variables prefixed `CONNBOT_`, optionally
a config file.

`CONNBOT_CONFIG` names a file of `CONNBOT_NAME=value` lines (dotenv format); the same names
as the environment, which wins over the file. Each integration has its own settings section
in `integrations/<system>/settings.py`, loaded with `load()` below so that every section reads
the same file and reports errors the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable (the CLI exits 2)."""


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


def load(cls: type[S], **overrides: Any) -> S:
    """Build a settings section from the environment and the config file.

    A bad value raises `SettingsError` with one line per problem naming the variable.
    """
    try:
        return cls(_env_file=config_file(), **overrides)
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
