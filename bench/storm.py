"""Item 6: a storm of tickets against one PBX whose Asterisk is stopped, with incidents on and off.

200 users of the lab's stopped PBX and 4 of a healthy one file Jira tickets (signed webhooks) at 10
per second, while an in-process consumer (4 threads), the stored events' taker and a sweeper work
them, as `connbot serve` does. Jira is the Jira simulator mounted on `responses`, Slack the Web API
simulator on loopback, the PBXs and app backends the lab's simulators. Then Asterisk is started
again (the lab's Repair): with incidents on, the incident's next check sees it and connbot re-checks
and closes every ticket; with incidents off, someone answers *Fixed* on each ticket's own question
and connbot re-checks and closes it. Measured per variant: from the first ticket to the last one's
first comment (joined, or its run's first note), the p50/p99 of each ticket's time to its first
comment, Jira and Slack calls and PBX checks per ticket, and from the repair to every ticket closed.
The variants run interleaved (on, off, on, off, ...), each round from a fresh lab and database.

`python -m bench.run storm` runs it alone and rewrites its part of bench/results.json and RESULTS.md.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import responses
from sqlalchemy import func, select

from bench.common import load, percentile
from bot.lab import Lab
from bot.runs.prompts import Via, answer_prompt
from bot.runs.sweeper import sweep
from bot.services import Services
from bot.settings import Settings
from bot.state.models import (
    Effect,
    EffectState,
    Incident,
    Prompt,
    PromptState,
    Run,
    RunState,
    StepResult,
    Ticket,
)
from bot.state.queue import Sweeper
from bot.web.app import create_app
from integrations.slack.channel import SlackChannel
from integrations.slack.settings import SlackSettings
from simulators.slack import CHANNEL, SlackWebApi
from tests.fakes import jira as fake_jira

DOWN, HEALTHY = "asterisk_stopped", "healthy_after_reconnect"
TICKETS, HEALTHY_TICKETS, RATE, ROUNDS = 200, 4, 10.0, 3
USER_FIELD = "customfield_10050"
VARIANTS = (("on", True), ("off", False))
LIMIT = 600  # seconds a phase may take before the round is given up as failed


def _webhook(web: Any, key: str, scenario: str, n: int) -> None:
    resp = fake_jira.post(web, fake_jira.lab_issue(key, scenario, n, USER_FIELD), f"storm-{key}")
    assert resp.status_code in (200, 202), resp.get_data(as_text=True)


def _wait(done: Any, what: str) -> float:
    t0 = time.monotonic()
    while not done():
        if time.monotonic() - t0 > LIMIT:
            raise TimeoutError(f"storm: {what} not reached in {LIMIT} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def one(incidents: bool, workdir: Path, jira_latency: float = 0.0) -> dict[str, Any]:
    """One storm, from a fresh lab and database."""
    data = workdir / f"storm-{'on' if incidents else 'off'}-{time.monotonic_ns()}"
    settings = Settings(
        data_dir=data,
        sweep_seconds=1,
        incidents=incidents,
        incident_check_seconds=2,
        incident_check_max_seconds=10,
        health_check_seconds=0,
    )
    slack_api = SlackWebApi().start()
    lab = Lab(
        data, reconnect_seconds=0.05, only=[DOWN, HEALTHY], users={DOWN: TICKETS, HEALTHY: HEALTHY_TICKETS}
    )
    lab.start()
    env = {
        **os.environ,
        **lab.environment(),
        **fake_jira.jira_env(USER_FIELD=USER_FIELD, INCIDENT_PROJECT="OPS", ESCALATION="{}"),
        "CONNBOT_APP_POLL_INTERVAL": "0.05",
        "CONNBOT_NET_TIMEOUT": "0.3",
        "CONNBOT_NET_PROBES": "1",
    }
    slack = SlackChannel(
        SlackSettings(
            bot_token="xoxb-bench",
            signing_secret="bench-signing-secret",
            api_url=slack_api.url,
            channel=CHANNEL,
        )
    )
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add_passthru("http://127.0.0.1")
            jira = fake_jira.FakeJira(rsps, latency=jira_latency)
            svc = Services.build(settings, channels=[slack], environ=env)
            svc.store.upgrade()
            web = create_app(services=svc).test_client()
            consumer = svc.queue.consumer(4, in_process=True)
            consumer.start()
            sweepers = [
                svc.queue.event_taker(),
                Sweeper(lambda: sweep(svc.context), settings.sweep_seconds),
            ]
            for sweeper in sweepers:
                sweeper.start()
            try:
                return _storm(svc, web, lab, jira, rsps, slack_api, incidents)
            finally:
                consumer.stop(graceful=True)
                for sweeper in sweepers:
                    sweeper.stop()
                svc.close()
    finally:
        lab.stop()
        slack_api.stop()


def _storm(
    svc: Services, web: Any, lab: Lab, jira: Any, rsps: Any, slack_api: SlackWebApi, incidents: bool
) -> dict[str, Any]:
    filed: dict[str, float] = {}
    keys = [(f"VOIP-{i + 1}", DOWN, i) for i in range(TICKETS)]
    keys += [(f"VOIP-{TICKETS + i + 1}", HEALTHY, i) for i in range(HEALTHY_TICKETS)]
    keys.sort(key=lambda k: k[2] * (TICKETS // HEALTHY_TICKETS) if k[1] == HEALTHY else k[2])
    load_before, t0 = load(), time.monotonic()
    wall0 = svc.context.clock()
    for n, (key, scenario, user) in enumerate(keys):
        time.sleep(max(0.0, t0 + n / RATE - time.monotonic()))
        _webhook(web, key, scenario, user)
        filed[key] = time.monotonic()
    down = [k for k, sc, _ in keys if sc == DOWN]

    def first_said() -> dict[str, float]:
        """Each ticket's first effect made on Jira: seconds after the storm began."""
        with svc.store.tx() as s:
            rows = s.execute(
                select(Ticket.key, func.min(Effect.done_at))
                .join(Run, Run.ticket_id == Ticket.id)
                .join(Effect, Effect.run_id == Run.id)
                .where(
                    Effect.state == EffectState.DONE,
                    Effect.kind.in_(("comment", "incident.join", "escalate")),
                )
                .group_by(Ticket.key)
            ).all()
        return {key: (at - wall0).total_seconds() for key, at in rows if at is not None}

    def settled() -> bool:
        """Every ticket of the stopped PBX joined (on) or asked its question (off), effects made."""
        with svc.store.tx() as s:
            state = RunState.HELD if incidents else RunState.WAITING
            waiting = s.scalar(
                select(func.count())
                .select_from(Run)
                .join(Ticket)
                .where(Ticket.key.in_(down), Run.state == state)
            )
            pending = s.scalar(
                select(func.count()).select_from(Effect).where(Effect.state == EffectState.PENDING)
            )
        return waiting == len(down) and pending == 0

    _wait(settled, "every ticket joined or asked")
    said = first_said()
    latency = [said[k] - (filed[k] - t0) for k in down if k in said]
    to_all = max(said[k] for k in down)
    jira_calls = len([c for c in rsps.calls if c.request.url.startswith(fake_jira.URL)])
    slack_calls = len(slack_api.calls)
    with svc.store.tx() as s:
        pbx_steps = s.scalar(
            select(func.count())
            .select_from(StepResult)
            .join(Run)
            .where(Run.pbx == DOWN, StepResult.action.like("pbx.%"))
        )
        checks = sum(i.checks + 1 for i in s.scalars(select(Incident).where(Incident.pbx == DOWN)))
    before = {"jira": jira_calls, "slack": slack_calls, "pbx": pbx_steps + checks}

    lab.repair(DOWN)
    if not incidents:
        with svc.store.tx() as s:
            open_ids = list(s.scalars(select(Prompt.id).where(Prompt.state == PromptState.OPEN)))
        for prompt_id in open_ids:
            with svc.store.tx() as s:
                answer_prompt(svc.context, s, prompt_id, "fixed", None, "bench", Via.DESK)

    def all_closed() -> bool:
        with svc.store.tx() as s:
            ended = s.scalar(
                select(func.count())
                .select_from(Run)
                .join(Ticket)
                .where(Ticket.key.in_(down), Run.state == RunState.ENDED, Run.end_kind == "close")
            )
            pending = s.scalar(
                select(func.count()).select_from(Effect).where(Effect.state == EffectState.PENDING)
            )
        return ended == len(down) and pending == 0

    recovered = _wait(all_closed, "every ticket closed after the repair")
    closed_again = sum(1 for k in down if jira.issue(k).status == "Done")
    return {
        "incidents": incidents,
        "tickets": len(keys),
        "first_comment_p50_s": round(percentile(latency, 50), 2),
        "first_comment_p99_s": round(percentile(latency, 99), 2),
        "all_said_s": round(to_all, 1),
        "before": {k: round(v / len(down), 2) for k, v in before.items()},
        "total": {
            "jira": round(
                len([c for c in rsps.calls if c.request.url.startswith(fake_jira.URL)]) / len(down), 2
            ),
            "slack": round(len(slack_api.calls) / len(down), 2),
        },
        "recovery_s": round(recovered, 1),
        "closed_in_jira": closed_again,
        "load": [load_before, load()],
        "incidents_opened": _count_incidents(svc),
    }


def _count_incidents(svc: Services) -> int:
    with svc.store.tx() as s:
        return int(s.scalar(select(func.count()).select_from(Incident)) or 0)


def storm(workdir: Path) -> dict[str, Any]:
    """The variants interleaved, ROUNDS rounds; every round's figures and the medians."""
    rounds: list[dict[str, Any]] = []
    for r in range(ROUNDS):
        for incidents in (True, False):
            print(
                f"bench: storm round {r + 1} incidents {'on' if incidents else 'off'}",
                file=sys.stderr,
                flush=True,
            )
            rounds.append(one(incidents, workdir))
    return {
        "rounds": rounds,
        "median": {label: _median([x for x in rounds if x["incidents"] == on]) for label, on in VARIANTS},
    }


def _median(xs: list[dict[str, Any]]) -> dict[str, Any]:
    def m(get: Any) -> dict[str, float]:
        values = [get(x) for x in xs]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {
        "first_comment_p50_s": m(lambda x: x["first_comment_p50_s"]),
        "first_comment_p99_s": m(lambda x: x["first_comment_p99_s"]),
        "all_said_s": m(lambda x: x["all_said_s"]),
        "jira_before": m(lambda x: x["before"]["jira"]),
        "slack_before": m(lambda x: x["before"]["slack"]),
        "pbx_before": m(lambda x: x["before"]["pbx"]),
        "jira_total": m(lambda x: x["total"]["jira"]),
        "slack_total": m(lambda x: x["total"]["slack"]),
        "recovery_s": m(lambda x: x["recovery_s"]),
    }
