"""What every command shares: reading the settings, logging, building the services, failing with
one line and an exit code."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from bot.services import Services
from bot.settings import Settings, load_settings
from integrations.settings import SettingsError
from playbook.errors import PlaybookError


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"connbot: {message}", err=True)
    sys.exit(code)


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        _fail(f"bad settings:\n{exc}", 2)


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _services(settings: Settings) -> Services:
    try:
        return Services.build(settings)
    except (SettingsError, PlaybookError) as exc:
        _fail(str(exc), 2)
