"""`connbot incidents list|show|close|restored|assign|parent`: incidents for people and scripts."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy import select

from bot.cli.common import ConnbotGroup, _fail, _settings, existing_store
from bot.runs import notices
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Incident, IncidentState
from bot.web.views import incident_dict
from integrations.tickets import answerer

_ID = click.argument("incident_id", type=int)
_BY = click.option("--by", required=True, help="who acts (written on the tickets)")


@click.group(cls=ConnbotGroup)
def incidents() -> None:
    """Incidents: a PBX failing for all its users, and the tickets waiting for it (README, Incidents)."""


@incidents.command("list")
@click.option("--all", "every", is_flag=True, help="closed incidents too")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_incidents(every: bool, as_json: bool) -> None:
    """Open incidents (with --all, closed ones too), newest first."""
    with existing_store(_settings()).tx() as s:
        query = select(Incident).order_by(Incident.id.desc())
        if not every:
            query = query.where(Incident.state != IncidentState.CLOSED)
        rows = [incident_dict(s, inc) for inc in s.scalars(query)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no incident" + ("" if every else " is open"))
    for r in rows:
        click.echo(
            f"{r['id']:>5}  {r['state']:<10} {r['pbx'] or 'the PBX':<16} {r['title']}  "
            f"({r['tickets']} tickets, {r['users']} users, since {r['opened_at']})"
        )


@incidents.command("show")
@_ID
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def show_incident(incident_id: int, as_json: bool) -> None:
    """One incident: what fails, its checks, its tickets."""
    with existing_store(_settings()).tx() as s:
        inc = s.get(Incident, incident_id)
        if inc is None:
            _fail(f"no incident {incident_id}", 1)
        data = incident_dict(s, inc, children=True)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _echo(data)


def _echo(d: dict[str, Any]) -> None:
    click.echo(f"incident {d['id']}: {d['title']} on {d['pbx'] or 'the PBX'} ({d['state']})")
    click.echo(f"what fails: {d['statement']}")
    click.echo(f"opened: {d['opened_at']} by {d['opened_by']}")
    click.echo(f"latest check: {d['checked_at'] or 'none yet'}: {d['health'] or '-'}")
    if d["next_check_at"]:
        click.echo(f"next check: {d['next_check_at']}")
    if d["owner"]:
        click.echo(f"taken by: {answerer(d['owner'], d['owner_via'])}")
    for label, key in (("parent issue", "parent"), ("outcome", "summary")):
        if d[key]:
            click.echo(f"{label}: {d[key]}")
    click.echo(
        f"tickets: {d['tickets']} from {d['users']} users, {d['closed_tickets']} closed after recovery"
    )
    for c in d["children"]:
        end = f" ({c['end']})" if c["end"] else ""
        click.echo(f"  {c['ticket']:<14} user {c['user'] or '-':<10} run {c['run']}: {c['state']}{end}")


def _act(incident_id: int, action: str, by: str, key: str = "") -> None:
    svc = Services.build(_settings())
    try:
        click.echo(notices.act(svc.context, incident_id, action, by, Via.CLI, key))
        notices.show(svc.context, incident_id)
    except notices.IncidentActionError as exc:
        _fail(str(exc), 1)
    finally:
        svc.close()


@incidents.command("close")
@_ID
@_BY
def close_incident(incident_id: int, by: str) -> None:
    """Not a PBX problem: close the incident; its tickets are checked on their own again."""
    _act(incident_id, "dismiss", by)


@incidents.command("restored")
@_ID
@_BY
def restored(incident_id: int, by: str) -> None:
    """The PBX is back: connbot checks it now and, if it agrees, re-checks and closes the tickets."""
    _act(incident_id, "restored", by)


@incidents.command("assign")
@_ID
@_BY
def assign(incident_id: int, by: str) -> None:
    """Take the incident (its message and reminders name you)."""
    _act(incident_id, "assign", by)


@incidents.command("parent")
@_ID
@click.argument("key")
@_BY
def parent(incident_id: int, key: str, by: str) -> None:
    """Link every ticket of the incident to an existing issue KEY (e.g. OPS-12)."""
    _act(incident_id, "parent", by, key)
