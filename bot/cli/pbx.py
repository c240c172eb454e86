"""`connbot pbx list|check`: the PBX instances of the directory and their health, for people and cron."""

from __future__ import annotations

import json
import sys

import click

from bot.cli.common import ConnbotGroup, _settings, existing_store
from bot.fleet import health
from bot.fleet.directory import ENV, Directory
from bot.fleet.registry import configured_directory, instance_registry
from bot.state.models import utcnow
from bot.state.store import Store
from integrations.base import discover
from integrations.settings import Sections, SettingsError


def _directory(sections: Sections) -> Directory:
    try:
        directory = configured_directory(sections)
    except SettingsError as exc:
        click.echo(f"connbot: bad settings:\n{exc}", err=True)
        sys.exit(2)
    if directory is None:
        click.echo(
            f"connbot: no PBX directory is configured ({ENV}); connbot uses the one PBX of CONNBOT_ARI_*",
            err=True,
        )
        sys.exit(2)
    return directory


def _store() -> Store:
    return existing_store(_settings())


@click.group(cls=ConnbotGroup)
def pbx() -> None:
    """The PBX instances of the directory (CONNBOT_PBX_DIRECTORY)."""


@pbx.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_instances(as_json: bool) -> None:
    """Each instance, its customers and its last health check."""
    directory = _directory(Sections())
    rows = health.listing(_store(), directory)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "never checked" if r["ok"] is None else f"{'ok' if r['ok'] else 'FAIL'} at {r['checked_at']}"
        click.echo(f"{r['name']:<16} customers: {', '.join(r['customers']) or '-'}")
        click.echo(f"{'':<16} ari {r['ari']}  sip {r['sip']}" + (f"  app {r['app']}" if r["app"] else ""))
        click.echo(f"{'':<16} last check: {state}")
        for line in r["failed"]:
            click.echo(f"{'':<16}   {line}")


@pbx.command("check")
@click.argument("name", required=False)
@click.option("--all", "every", is_flag=True, help="check every instance")
def check_instances(name: str | None, every: bool) -> None:
    """Check an instance (or --all): ARI reachable, credentials accepted, SIP modules running,
    database reachable (when configured), SIP port answering. Exits 1 when any check fails."""
    sections = Sections()
    directory = _directory(sections)
    if bool(name) == every:
        raise click.UsageError("name one instance or give --all")
    chosen = directory.instances if every else [i for i in directory.instances if i.name == name]
    if not chosen:
        raise click.UsageError(
            f"no instance {name!r}; known: {', '.join(i.name for i in directory.instances)}"
        )
    store, classes, failed = _store(), discover(), False
    for inst in chosen:
        try:
            registry = instance_registry(inst, classes, sections)
        except SettingsError as exc:
            click.echo(f"connbot: bad settings:\n{exc}", err=True)
            sys.exit(2)
        checks = health.check(inst, registry)
        health.record(store, inst.name, checks, utcnow())
        for c in checks:
            click.echo(f"{inst.name:<16} {c.name:<16} {'ok' if c.ok else 'FAIL':<4}  {c.reason}")
        failed = failed or not all(c.ok for c in checks)
    sys.exit(1 if failed else 0)
