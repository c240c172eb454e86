"""What every command shares: reading the settings, logging, building the services, and turning a
set-up error (a bad setting, an unreadable playbook, an unreachable or empty database) into one line
naming what to fix and exit code 2, never a traceback."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot import logs
from bot.fleet.registry import configured_directory
from bot.settings import Settings, load_settings
from bot.state.store import Store
from integrations.settings import (
    Sections,
    SettingsError,
    check_all,
    config_file,
    config_names,
    unknown_names,
)
from playbook.errors import PlaybookError


class SetupError(Exception):
    """Something about the set-up a person must fix; the message says what (exit code 2)."""


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"connbot: {message}", err=True)
    sys.exit(code)


class ConnbotCommand(click.Command):
    """A `connbot` command: a bad value of any setting stops it, once its arguments are parsed (so that
    `--help` works whatever the settings)."""

    def invoke(self, ctx: click.Context) -> Any:
        warn_unknown_names()
        check_all()
        return super().invoke(ctx)


class ConnbotGroup(click.Group):
    """A `connbot` group: its commands are `ConnbotCommand`s and its groups `ConnbotGroup`s, and every
    command's set-up errors become one line and exit 2."""

    command_class = ConnbotCommand
    group_class = type

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            _fail(f"bad settings:\n{exc}", 2)
        except PlaybookError as exc:
            _fail(f"{exc.source} is not a usable playbook: " + "; ".join(exc.problems), 2)
        except SetupError as exc:
            _fail(str(exc), 2)
        except DBAPIError as exc:
            _fail(_database_problem(exc), 2)


def _database_problem(exc: DBAPIError) -> str:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    if "no such table" in reason or "does not exist" in reason:
        return f"the database {_where()} has no connbot tables: run `connbot db upgrade` first ({reason})"
    return f"cannot use the database {_where()}: {reason}"


def _where() -> str:
    """The database as people configured it, without a password."""
    settings = load_settings()
    url = make_url(settings.database_url or settings.sqlalchemy_url).render_as_string(hide_password=True)
    source = "CONNBOT_DATABASE_URL" if settings.database_url else "CONNBOT_DATA_DIR"
    return f"{url} ({source})"


def warn_unknown_names() -> None:
    """Warn once, on stderr, about `CONNBOT_*` names no setting reads (a misspelt setting is
    otherwise silently ignored). Names the PBX directory gives its secrets are known too."""
    path = config_file()
    directory = configured_directory(Sections())
    secrets = {v for i in directory.instances for _, v in i.secret_envs()} if directory else set()
    for line in unknown_names({k: v for k, v in os.environ.items() if k not in secrets}, config_names(path)):
        click.echo(f"connbot: warning: {line}", err=True)


def _settings(**overrides: object) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def _logging(settings: Settings) -> None:
    logs.configure(settings.log_level, settings.log_format)


def existing_store(settings: Settings) -> Store:
    """The store of a command that only reads: it must exist already (never create an empty one)."""
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).is_file():
        raise SetupError(
            f"no connbot database at {url.database} (CONNBOT_DATA_DIR={settings.data_dir}): start connbot "
            "(`connbot serve`) or create it (`connbot db upgrade`), or point CONNBOT_DATA_DIR or "
            "CONNBOT_DATABASE_URL at the one in use"
        )
    return Store(settings.sqlalchemy_url)
