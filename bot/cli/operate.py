"""`connbot runs cancel|retry|rerun|triage`, `connbot effects list|retry`, `connbot prompts hand`: the
operator verbs (`bot.runs.operate`) for people and scripts."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from sqlalchemy import select

from bot.cli.common import ConnbotCommand, ConnbotGroup, _fail, _settings, existing_store
from bot.errors import BadRequestError, NotFoundError
from bot.runs import operate
from bot.runs.context import RunContext
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Effect, EffectState

_BY = click.option("--by", default=None, help="who acts, written on the ticket (default: your login name)")
_WHY = click.option("--why", default="", help="why, written on the ticket")


def _actor(by: str | None, why: str) -> operate.Actor:
    return operate.Actor(by or getpass.getuser(), Via.CLI, why)


@contextmanager
def _context() -> Iterator[RunContext]:
    svc = Services.build(_settings())
    try:
        yield svc.context
    finally:
        svc.close()


def _do(verb: Callable[[RunContext], operate.Done]) -> None:
    """Take a verb and say what it did; a refusal is one line on stderr (exit 1: not found, 3: not now)."""
    with _context() as ctx:
        try:
            click.echo(verb(ctx).said)
        except NotFoundError as exc:
            _fail(str(exc), 1)
        except BadRequestError as exc:
            _fail(str(exc), 3 if exc.status == 409 else 1)


def register(runs: click.Group, main: click.Group) -> None:
    """Add the verbs on runs to `connbot runs`, and the `effects` and `prompts` groups to `connbot`."""
    for verb in (cancel, retry, rerun, triage):
        runs.add_command(verb)
    main.add_command(effects)
    main.add_command(prompts)


_RUN = click.argument("run")


@click.command(cls=ConnbotCommand)
@_RUN
@_BY
@_WHY
def cancel(run: str, by: str | None, why: str) -> None:
    """End RUN (a run id, or a ticket key for its latest run) for good; its question is withdrawn."""
    _do(lambda ctx: operate.on_run(ctx, run, operate.Verb.CANCEL, _actor(by, why)))


@click.command(cls=ConnbotCommand)
@_RUN
@_BY
@_WHY
def retry(run: str, by: str | None, why: str) -> None:
    """Take RUN's current step again now (an action due for a retry, or a question asked afresh)."""
    _do(lambda ctx: operate.on_run(ctx, run, operate.Verb.RETRY, _actor(by, why)))


@click.command(cls=ConnbotCommand)
@_RUN
@click.option("--from", "step", default=None, help="the playbook step to start from (default: its start)")
@_BY
@_WHY
def rerun(run: str, step: str | None, by: str | None, why: str) -> None:
    """Run RUN's ticket again on the current playbook, from the start or from a step: a new run."""
    _do(lambda ctx: operate.on_run(ctx, run, operate.Verb.RERUN, _actor(by, why), step))


@click.command(cls=ConnbotCommand)
@click.argument("key")
@_BY
@_WHY
def triage(key: str, by: str | None, why: str) -> None:
    """Start the playbook for ticket KEY, which connbot heard of but did not take as a connection issue."""
    _do(lambda ctx: operate.triage(ctx, key, _actor(by, why)))


@click.group(cls=ConnbotGroup)
def effects() -> None:
    """Effects on Jira and Slack that failed for good, and retrying them."""


@effects.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def list_effects(as_json: bool) -> None:
    """Effects that failed for good (state failed), newest first."""
    with existing_store(_settings()).tx() as s:
        rows = [
            {"id": e.id, "run": e.run_id, "kind": e.kind, "attempts": e.attempts, "error": e.error}
            for e in s.scalars(
                select(Effect).where(Effect.state == EffectState.FAILED).order_by(Effect.id.desc()).limit(200)
            )
        ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no effect has failed")
    for r in rows:
        click.echo(f"{r['id']:>6}  run {r['run']}  {r['kind']:<14} ({r['attempts']} attempts) {r['error']}")


@effects.command("retry")
@click.argument("effect_id", type=int)
@_BY
@_WHY
def retry_effect(effect_id: int, by: str | None, why: str) -> None:
    """Make a failed effect again (its run's worker makes it, in order)."""
    _do(lambda ctx: operate.retry_effect(ctx, effect_id, _actor(by, why)))


@click.group(cls=ConnbotGroup)
def prompts() -> None:
    """Questions to people."""


@prompts.command("hand")
@click.argument("prompt_id")
@click.option("--to", "to", required=True, help="whom to hand it to: a Slack user id (U...) or a desk name")
@_BY
@_WHY
def hand(prompt_id: str, to: str, by: str | None, why: str) -> None:
    """Hand an open question to someone else: they may answer it and are reminded of it."""
    _do(lambda ctx: operate.hand(ctx, prompt_id, to, _actor(by, why)))
