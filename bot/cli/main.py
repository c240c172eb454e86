"""The `connbot` command. Each command is a thin shell over a plain function."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from bot.cli.common import (
    ConnbotGroup,
    SetupError,
    _fail,
    _logging,
    _settings,
    existing_store,
)
from bot.cli.incidents import incidents
from bot.cli.operate import register as operate_commands
from bot.cli.pbx import pbx
from bot.cli.server import serve as run_server
from bot.cli.server import work
from bot.cli.slack import cli as slack_cli
from bot.errors import NotFoundError
from bot.lab import LabSettings
from bot.services import Services, diagnosis_rules
from bot.settings import Settings
from bot.state.models import PlaybookVersion, Run, RunState
from bot.state.store import Store
from bot.web.app import create_app
from bot.web.auth import hash_password as make_hash
from bot.web.views import end_label, run_dict
from integrations.base import Registry, discover
from integrations.settings import load
from integrations.tickets import answerer, plain
from playbook import compare, loader
from playbook import render as diagrams
from playbook.diagnosis import diagnose, rules_of
from playbook.engine import simulate as walk
from playbook.errors import PlaybookError
from playbook.facts import NAMES, written
from playbook.facts import check as check_findings
from playbook.models import Playbook
from playbook.paths import check as check_path
from playbook.paths import load_table


@click.group(cls=ConnbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="connbot", prog_name="connbot")
def main() -> None:
    """connbot: triages VoIP 'the app can't connect' tickets with the support playbook.

    Settings come from CONNBOT_* environment variables (and the file named by CONNBOT_CONFIG);
    see the README for each.
    """


@main.command()
@click.option("--host", default=None, help="address to bind (CONNBOT_HOST, default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port to bind (CONNBOT_PORT, default 8080)")
@click.option(
    "--lab",
    is_flag=True,
    default=False,
    help="also run the lab: simulated PBXs and app backends for sample scenarios (CONNBOT_LAB=true)",
)
def serve(host: str | None, port: int | None, lab: bool) -> None:
    """Run the web app and a worker in one process (the embedded default)."""
    settings = _settings(host=host, port=port)
    lab = lab or load(LabSettings).lab
    # The web worker builds its services and app after gunicorn forks, where an error is a traceback
    # and "Worker failed to boot": build them once here so that a bad setting, playbook or pairing of
    # settings (a desk on another host without a login) is one line. The lab brings its own directory.
    environ = {k: v for k, v in os.environ.items() if not (lab and k == "CONNBOT_PBX_DIRECTORY")}
    services = Services.build(settings, environ=environ)
    try:
        create_app(settings, services)
    finally:
        services.close()
    _logging(settings)
    run_server(settings, lab=lab)


@main.command()
@click.option("--threads", type=int, default=None, help="worker threads (CONNBOT_WORKER_THREADS, default 4)")
def worker(threads: int | None) -> None:
    """Consume the task queue: advance runs, process inbound events, sweep."""
    settings = _settings(worker_threads=threads)
    _logging(settings)
    work(settings)


@main.group()
def db() -> None:
    """The state store."""


@db.command()
def upgrade() -> None:
    """Apply the database migrations (the Procfile's release step)."""
    settings = _settings()
    _logging(settings)
    Store(settings.sqlalchemy_url).upgrade()
    click.echo(f"database is up to date ({settings.sqlalchemy_url.split('@')[-1]})")


@main.group()
def playbook() -> None:
    """Check, draw and try out playbooks."""


def _load_playbook(path: Path | None) -> Any:
    try:
        return loader.load(path, Registry(discover()).catalogue, diagnosis_rules(load(Settings)))
    except PlaybookError as exc:
        click.echo(f"connbot: {exc.source} is not a valid playbook:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)


_PATH = click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))


@playbook.command()
@_PATH
def validate(path: Path | None) -> None:
    """Check a playbook (default: the shipped one) against the installed adapters."""
    pb = _load_playbook(path)
    ends = sum(1 for s in pb.steps.values() if s.is_end)
    click.echo(f"{pb.name}: valid ({len(pb.steps)} steps, {ends} ends)")


@playbook.command()
@_PATH
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True)
def render(path: Path | None, fmt: str) -> None:
    """Print a diagram of the playbook's graph."""
    click.echo(getattr(diagrams, fmt)(_load_playbook(path)), nl=False)


@playbook.command()
@_PATH
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    metavar="STEP=OUTCOME",
    help="the outcome of a step; repeat for several steps, or for later visits of one step",
)
@click.option(
    "--fact",
    "facts",
    multiple=True,
    metavar="[STEP.]FINDING=VALUE",
    help="a finding the run has from the start, or (STEP.) that a step adds when it runs; "
    "a list finding takes comma-separated values",
)
def simulate(path: Path | None, outcomes: tuple[str, ...], facts: tuple[str, ...]) -> None:
    """Walk the playbook with the given outcomes and findings, without side effects; print the path,
    the end and the leading cause."""
    pb = _load_playbook(path)
    answers: dict[str, list[str]] = {}
    for item in outcomes:
        step, sep, value = item.partition("=")
        if not sep or step not in pb.steps:
            _fail(f"--outcome {item!r}: expected STEP=OUTCOME with a step of {pb.name}", 2)
        answers.setdefault(step, []).append(value)
    start: dict[str, Any] = {}
    found: dict[str, dict[str, Any]] = {}
    for item in facts:
        key, sep, value = item.partition("=")
        step, _, name = key.rpartition(".")
        if not sep or not name or (step and step not in pb.steps):
            _fail(
                f"--fact {item!r}: expected FINDING=VALUE or STEP.FINDING=VALUE with a step of {pb.name}", 2
            )
        if name not in NAMES:
            _fail(f"--fact {item!r}: unknown finding {name!r} (known: {', '.join(sorted(NAMES))})", 2)
        into = found.setdefault(step, {}) if step else start
        into[name] = written(name, value)
        try:
            check_findings({name: into[name]})
        except ValueError as exc:
            _fail(f"--fact {item!r}: {exc}", 2)
    try:
        path_taken, end = walk(pb, answers, start, found)
    except ValueError as exc:
        _fail(str(exc), 1)
    for n, (step, outcome) in enumerate(path_taken, 1):
        click.echo(f"{n:2}. [L{pb.steps[step].level}] {step}: {outcome}")
    click.echo(f"end: {'closed' if end.kind == 'close' else f'escalated to level {end.level}'}: {end.reason}")
    every = {**start, **{k: v for step in found.values() for k, v in step.items()}}
    if every:
        cause = diagnose(rules_of(pb), check_findings(every))[0]
        click.echo(f"leading cause: {cause.title} ({cause.confidence:.0%}): {cause.question()}")


@playbook.command("test")
@click.argument("table", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--playbook",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the playbook to walk (default: the one the table names, else the shipped one)",
)
def test_paths(table: Path, path: Path | None) -> None:
    """Walk every row of a table of expected paths (see the README, Changing the playbook) through a
    playbook; name each row that goes another way, and exit 1 if any does (for CI)."""
    try:
        expected = load_table(table)
    except PlaybookError as exc:
        problems = "\n".join(f"  - {p}" for p in exc.problems)
        _fail(f"{exc.source} is not a valid table of paths:\n{problems}", 2)
    pb = _load_playbook(path or expected.playbook)
    failures = [message for row in expected.rows if (message := check_path(pb, row)) is not None]
    for message in failures:
        click.echo(message)
    total = len(expected.rows)
    click.echo(f"{pb.name}: {total - len(failures)} of {total} paths as expected")
    sys.exit(1 if failures else 0)


def _version(arg: str, store: Store | None) -> tuple[str, Playbook, str]:
    """A playbook named on the command line: a file, or a stored version (its first 6 or more hex
    digits). Its version, the playbook and where it came from."""
    if Path(arg).is_file():
        pb = _load_playbook(Path(arg))
        return loader.version(loader.dump(pb)), pb, arg
    if store is None or len(arg) < 6 or any(c not in "0123456789abcdef" for c in arg):
        _fail(f"{arg!r} is neither a playbook file nor a stored version (6 or more hex digits)", 2)
    with store.tx() as s:
        found = s.scalars(select(PlaybookVersion).where(PlaybookVersion.version.startswith(arg))).all()
    if len(found) != 1:
        _fail(f"{len(found) or 'no'} stored playbook versions start with {arg!r}", 2)
    kept = found[0]
    return (
        kept.version,
        loader.restore(kept.content, diagnosis_rules(load(Settings))),
        f"stored, {kept.source}",
    )


@playbook.command("diff")
@click.argument("old")
@click.argument("new")
def diff(old: str, new: str) -> None:
    """The steps changed from OLD to NEW (each a playbook file or a stored version), and the runs under
    way on OLD that may still reach one: they finish on OLD, new runs start on the file workers load."""
    settings = _settings()
    try:
        store: Store | None = existing_store(settings)
    except SetupError as exc:
        store, no_store = None, str(exc)
    (v_old, pb_old, from_old), (v_new, pb_new, from_new) = _version(old, store), _version(new, store)
    click.echo(f"old: {v_old[:12]} ({pb_old.name}, {from_old})")
    click.echo(f"new: {v_new[:12]} ({pb_new.name}, {from_new})")
    changed = compare.changes(pb_old, pb_new)
    for field in ("start", "timeout"):
        if getattr(pb_old, field) != getattr(pb_new, field):
            click.echo(f"the playbook's {field}: {getattr(pb_old, field)} -> {getattr(pb_new, field)}")
    click.echo("steps:" if changed else "no step changed")
    for sid, what in changed.items():
        click.echo(f"  {sid}: {what}")
    if store is None:
        click.echo(f"runs: not checked ({no_store})")
        return
    with store.tx() as s:
        under_way = s.scalars(
            select(Run).where(Run.state != RunState.ENDED, Run.playbook_version == v_old).order_by(Run.id)
        ).all()
        affected = [
            (run, [sid for sid in changed if sid in compare.reachable(pb_old, run.step or pb_old.start)])
            for run in under_way
        ]
        affected = [(run, ahead) for run, ahead in affected if ahead]
        click.echo(
            f"runs under way on {v_old[:12]} that may still reach a changed step: {len(affected)}"
            + (f" (they finish on {v_old[:12]}; new runs start on the file workers load)" if affected else "")
        )
        for run, ahead in affected:
            click.echo(f"  run {run.id}  {run.ticket.key}  {run.state} at {run.step}: {', '.join(ahead)}")


@main.group()
def runs() -> None:
    """Inspect runs, and act on them: cancel, retry, rerun, triage."""


@runs.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_runs(limit: int, as_json: bool) -> None:
    """The most recent runs, newest first."""
    store = existing_store(_settings())
    with store.tx() as s:
        data = [run_dict(r, steps=False) for r in s.scalars(select(Run).order_by(Run.id.desc()).limit(limit))]
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if not data:
        click.echo("no runs yet")
    for r in data:
        end = end_label(r["end"], r["end_level"]) if r["end"] else ""
        click.echo(f"{r['id']:>6}  {r['ticket']:<12} {r['state']:<8} {r['step'] or '':<22} {end}")


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def show_run(run_id: int, as_json: bool) -> None:
    """Every step of a run with its outcome, evidence summary and timing; its findings and diagnosis."""
    settings = _settings()
    rules = diagnosis_rules(settings)
    store = existing_store(settings)
    with store.tx() as s:
        run = s.get(Run, run_id)
        if run is None:
            _fail(str(NotFoundError(f"no run {run_id}")), 1)
        data = run_dict(run, rules=rules)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(
        f"run {data['id']}  ticket {data['ticket']} ({data['ticket_source']})  playbook {data['playbook']}"
        + (f" (version {data['playbook_version'][:12]})" if data["playbook_version"] else "")
    )
    click.echo(f"classification: {data['classification'] or '-'}")
    if data["pbx"] or data["pbx_reason"]:
        click.echo(f"PBX: {data['pbx'] or 'none'} ({data['pbx_reason']})")
    state = data["state"] if data["state"] != RunState.ENDED else end_label(data["end"], data["end_level"])
    click.echo(
        f"state: {state}"
        + (f"  (at {data['step']})" if data["state"] != RunState.ENDED else f": {data['end_reason']}")
    )
    for st in data["steps"]:
        code = f" [{st['outcome']}]" if st["said"] != st["outcome"] else ""
        who = f" (answered by {answerer(st['answered_by'], st['answered_via'])})" if st["answered_by"] else ""
        click.echo(
            f"{st['seq']:>3}. [L{st['level']}] {st['title']}  -> {st['said']}{code}{who}  "
            f"({st['seconds']:.2f}s, {st['mode']})"
        )
        if st["summary"]:
            click.echo(f"       {st['summary']}")
    for e in data["failed_effects"]:
        click.echo(f"failed effect {e['id']} ({e['kind']}, {e['attempts']} attempts): {e['error']}")
    for a in data["actions"]:
        click.echo(f"{a['at'][:19]}  {a['done']}" + (f": {a['why']}" if a["why"] else ""))
    _echo_diagnosis(data["findings"], data["diagnosis"])


def _echo_diagnosis(found: dict[str, Any], causes: list[dict[str, Any]]) -> None:
    click.echo("findings:" if found else "findings: none yet")
    for name, value in found.items():
        click.echo(f"  {name}: {plain(value)}")
    lead, rest = causes[0], causes[1:]
    click.echo(f"diagnosis: {lead['title']} ({lead['confidence']:.0%}): {lead['statement']}")
    for label, notes in (("why", lead["supporting"]), ("against it", lead["contrary"])):
        if notes:
            click.echo(f"  {label}: {'; '.join(notes)}")
    click.echo(f"  what to do: {lead['action']}")
    if rest:
        click.echo("  also possible: " + ", ".join(f"{c['title']} ({c['confidence']:.0%})" for c in rest))


@main.group()
def desk() -> None:
    """The local web desk."""


@desk.command("hash-password")
@click.option("--name", default=None, help="print a whole CONNBOT_DESK_USERS entry, name:hash, for this user")
def hash_password(name: str | None) -> None:
    """Hash a desk user's password (asked twice, never echoed) for CONNBOT_DESK_USERS."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        _fail("the password must have at least 8 characters", 2)
    hashed = make_hash(password)
    click.echo(f"{name}:{hashed}" if name else hashed)


main.add_command(slack_cli)
main.add_command(pbx)
main.add_command(incidents)
operate_commands(runs, main)
