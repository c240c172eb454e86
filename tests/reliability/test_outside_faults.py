"""Faults of the outside systems (issue 7, item 2): Jira, Slack, ARI and the app backend answer
500/502/503, 429 with Retry-After, time out or drop the connection on 30 % of calls (seeded), and
every ticket still ends as it does without faults, each comment and Slack message made once,
every retry after a 429 waiting at least its Retry-After. A system that stays down fails the step
(ARI, the app) or the effect (Jira, Slack) after a bounded number of attempts, with the reason
where people look, and the run goes on to its end.

Real runner, real adapters and clients; the systems are the wire fakes behind `tests/fakes/faults.py`.
Nothing sleeps: clients wait through `Faults.sleep`, and the runner's scheduled retries are taken
from the queue's schedule at once (their delays recorded), or each when it is due, beside the
worker's sweep, by a clock that jumps from one to the next (`World.run_for`).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import responses
from sqlalchemy import select

from bot.runs.sweeper import sweep
from bot.settings import Settings
from bot.state.models import Effect, Prompt, Run, utcnow
from bot.web.app import create_app
from bot.web.metrics import registry as metrics_registry
from integrations import http
from integrations.app.adapter import AppAdapter
from integrations.base import Registry, discover
from integrations.jira.client import JiraClient
from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets
from integrations.pbx.adapter import PbxAdapter
from integrations.pbx.settings import PbxSettings
from integrations.settings import load
from integrations.slack.channel import SlackChannel
from integrations.slack.settings import SlackSettings
from simulators import jira as simulated_jira
from simulators.app_api import Backend, Device
from simulators.serve import Server
from simulators.slack import CHANNEL, SlackWebApi
from tests.fakes.faults import KINDS, Faults
from tests.fakes.jira import BOT_USER, FakeJira, configure
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, InlineExecutor
from tests.reliability.conftest import issue_event, jira_headers
from tests.unit.integrations.wire_fakes import (
    ARI,
    STALE_PASSWORD,
    FakeAri,
    app_backend,
    app_settings,
    sip_settings,
)

TICKETS = [f"VOIP-{n}" for n in range(1, 9)]


@dataclass
class World:
    svc: Any
    web: Any
    jira: FakeJira
    ari: FakeAri
    app: Backend
    slack: SlackWebApi
    faults: Faults
    pristine: Any = None
    delays: list[float] = field(default_factory=list)  # the runner's scheduled retries, in seconds

    skew: dt.timedelta = dt.timedelta(0)  # how far the runner's clock has jumped ahead of the wall's

    @property
    def phone(self) -> Device:
        return self.app.devices[0]

    def __post_init__(self) -> None:
        self.pristine = copy.deepcopy((self.ari.objects, self.phone.server, self.phone.last_error))
        self.svc.context.clock = lambda: utcnow() + self.skew

    def file(self, key: str) -> None:
        body = issue_event(key)
        resp = self.web.post("/webhooks/jira", data=body, headers=jira_headers(body, f"delivery-{key}"))
        assert resp.status_code == 202, resp.get_data(as_text=True)

    def work(self) -> None:
        """Run every task, taking scheduled retries at once, until nothing is left."""
        huey = self.svc.queue.huey
        for _ in range(1000):
            self.svc.queue.run_pending()
            later = huey.read_schedule(dt.datetime(2100, 1, 1))
            if not later:
                return
            now = huey._get_timestamp()
            self.skew += max(task.eta - now for task in later) + dt.timedelta(seconds=1)  # the clock jumps
            for task in later:
                self.delays.append(round((task.eta - now).total_seconds()))
                task.eta = None  # due now
                huey.enqueue(task)
        raise AssertionError("the queue never went quiet")

    def run_for(self, seconds: float) -> None:
        """Work as a worker does for `seconds` of the runner's clock: each scheduled retry when it is
        due, the sweep every `CONNBOT_SWEEP_SECONDS`; the clock jumps from one to the next, and each
        jump goes on the faults' timeline."""
        huey, interval = self.svc.queue.huey, self.svc.settings.sweep_seconds
        now = self.skew.total_seconds()
        end, next_sweep = now + seconds, now + interval
        due: list[tuple[float, Any]] = []  # (when, task)
        while True:
            self.svc.queue.run_pending()
            wall = huey._get_timestamp()
            for task in huey.read_schedule(dt.datetime(2100, 1, 1)):
                delay = (task.eta - wall).total_seconds()
                self.delays.append(round(delay))
                due.append((now + delay, task))
            at = min([when for when, _ in due] + [next_sweep])
            if at > end:
                self.skew += dt.timedelta(seconds=end - now)
                for when, task in due:  # back in the queue's schedule, due when they are left to wait
                    task.eta = huey._get_timestamp() + dt.timedelta(seconds=when - end)
                    huey.add_schedule(task)
                return
            self.skew += dt.timedelta(seconds=at - now)
            now = at
            self.faults.tick(now)
            if at == next_sweep:
                sweep(self.svc.context)
                next_sweep += interval
            for when, task in due:
                if when <= now:
                    task.eta = None  # due now
                    huey.enqueue(task)
            due = [(when, task) for when, task in due if when > now]

    def reset_accounts(self) -> None:
        """The next ticket finds the PBX and the app as the first did: passwords differ again."""
        self.ari.objects, self.phone.server, self.phone.last_error = copy.deepcopy(self.pristine)
        self.phone.password = STALE_PASSWORD

    def answer_all(self, answers: dict[str, str]) -> None:
        """Work until every run ended, answering each question on the desk as a person would
        (`answers` by step; the first option otherwise)."""
        for _ in range(100):
            self.work()
            with self.svc.store.tx() as s:
                open_prompts = [
                    (p.id, answers.get(p.step, p.options[0][0]))
                    for p in s.scalars(select(Prompt).where(Prompt.state == "open"))
                ]
                running = s.scalars(select(Run).where(Run.state != "ended")).all()
            if not running:
                return
            assert open_prompts, "a run is neither ended nor waiting for a person: stuck"
            for prompt_id, choice in open_prompts:
                resp = self.web.post(
                    f"/api/prompts/{prompt_id}/answer", json={"answer": choice, "by": "Carol"}
                )
                assert resp.status_code == 200, resp.get_json()
        raise AssertionError("the runs did not end")

    def runs(self) -> dict[str, list[tuple[str, str]]]:
        with self.svc.store.tx() as s:
            return {r.ticket.key: [(x.step, x.outcome) for x in r.steps] for r in s.scalars(select(Run))}


@pytest.fixture
def world(make_services, monkeypatch, tmp_path) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    stubs: list[SlackWebApi] = []

    def make(faults: Faults, jira_url: str | None = None, **settings: Any) -> World:
        """`jira_url`: a Jira on loopback (a `simulators.serve.Server`) instead of the wire fake's."""
        configure(monkeypatch, RESOLUTION="Fixed", **({"URL": jira_url} if jira_url else {}))
        if jira_url:
            rsps.add_passthru(jira_url)
        policy = http.RetryPolicy(
            attempts=6,
            total=3600,
            backoff=0.5,
            max_backoff=8,
            connect_timeout=0.5,
            read_timeout=0.5,
            sleep=faults.sleep,
        )
        jira = FakeJira(faults.rsps("jira", rsps))
        ari, app = FakeAri(faults.rsps("ari", rsps)), app_backend(faults.rsps("app", rsps))
        app.devices[0].failure = lambda device: (  # the password reset fixes it
            {"sip_code": 403, "reason": "Forbidden", "local_error": None}
            if device.password == STALE_PASSWORD
            else None
        )
        slack = SlackWebApi(fault=faults.slack).start()
        stubs.append(slack)
        pbx = PbxAdapter.from_settings(
            PbxSettings.model_validate({"ari_url": ARI, "ari_username": "connbot", "ari_password": "ari-pw"}),
            app_settings(),
            policy=policy,
        )
        registry = Registry(
            discover(), [pbx, AppAdapter.from_settings(app_settings(), sip_settings(), policy=policy)]
        )
        tickets = JiraTickets(load(JiraSettings), client=JiraClient(load(JiraSettings), policy=policy))
        channel = SlackChannel(
            SlackSettings(
                bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.url, channel=CHANNEL
            ),
            executor=InlineExecutor(),
            sleep=faults.sleep,
        )
        # Eight password mismatches on one PBX would open an incident by count (the same app error,
        # CONNBOT_INCIDENT_THRESHOLD): these tests follow each ticket's own way through the faults.
        quiet = {"sweep_seconds": 0.1, "health_check_seconds": 0, "incident_threshold": 0}
        svc = make_services(
            settings=Settings(data_dir=tmp_path / "data", **{**quiet, **settings}),
            registry=registry,
            channels=[channel],
            tickets=[tickets],
        )
        return World(
            svc=svc,
            web=create_app(services=svc).test_client(),
            jira=jira,
            ari=ari,
            app=app,
            slack=slack,
            faults=faults,
        )

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield make
    for stub in stubs:
        stub.stop()


EXPECTED = [
    ("check_status", "failed"),
    ("force_reconnect", "still_failing"),
    ("record_error", "found"),
    ("check_config", "ok"),
    ("check_account", "exists"),
    ("compare_password", "password_mismatch"),
    ("reset_password", "approved"),
    ("reset_password", "updated_connected"),
    ("close_password_fixed", "closed"),
]
APPROVE = {"reset_password": "approve"}


def effects(svc: Any, state: str) -> list[tuple[str, str, int, str]]:
    with svc.store.tx() as s:
        return [
            (e.key, e.kind, e.attempts, e.error)
            for e in s.scalars(select(Effect).where(Effect.state == state))
        ]


def metric(w: World, name: str) -> dict[str, float]:
    """A gauge from /metrics by its labels."""
    found = {}
    for family in metrics_registry(w.svc).collect():
        for sample in family.samples:
            if sample.name == name:
                found[",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))] = sample.value
    return found


@pytest.mark.parametrize(
    "seed", [1, 2, 3]
)  # seed 1 once exhausted a step's transport retries: the step is retried later
def test_every_ticket_ends_as_without_faults_when_a_third_of_all_calls_fail(world, seed) -> None:  # type: ignore[no-untyped-def]
    # The app's POST and PATCH start a reconnect or set a password: only "nothing was done" faults for them.
    w = world(Faults(rate=0.3, seed=seed, careful={"app"}))
    for key in TICKETS:
        w.reset_accounts()
        w.file(key)
        w.answer_all(APPROVE)

    assert w.runs() == {key: EXPECTED for key in TICKETS}
    for system in ("jira", "ari", "app", "slack"):
        assert w.faults.injected(system), system
    assert set(w.faults.injected()) == set(KINDS)
    # Each comment on each issue once, in order, and the issue closed.
    for key in TICKETS:
        issue = w.jira.issue(key)
        headings = [c.split("\n", 1)[0] for c in issue.comments]
        assert headings == [
            "h3. connbot is triaging this ticket",
            headings[1],
            headings[2],
            "h3. Closed: Close - password mismatch fixed",
        ]
        assert headings[1].startswith("h3. Approval needed") and "Answered by Carol" in headings[2]
        assert (issue.status, issue.resolution) == ("Done", "Fixed")
    # One Slack message per question, settled once.
    with w.svc.store.tx() as s:
        prompt_ids = list(s.scalars(select(Prompt.id)))
    posted = [m for m in w.slack.posts() if m["thread_ts"] is None]
    assert sorted(m["metadata"]["event_payload"]["prompt_id"] for m in posted) == sorted(prompt_ids)
    assert len(w.slack.to("chat.update")) >= len(prompt_ids)
    assert len({u["ts"] for u in w.slack.to("chat.update")}) == len(prompt_ids)
    # Every retry after a 429 waited at least its Retry-After (the clients' waits are recorded).
    waits = w.faults.waits_after_429()
    assert len(waits) >= 5 and min(waits) >= w.faults.retry_after, waits
    # Effects and steps that failed were retried by the runner with a growing backoff, none given up.
    assert w.delays and set(w.delays) <= {2, 4, 8, 16}
    assert effects(w.svc, "failed") == [] and effects(w.svc, "pending") == []


def test_jira_down_for_good_fails_its_writes_after_bounded_attempts_and_the_run_ends(world, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING)
    w = world(Faults(rate=0.0, down={"jira"}), effect_attempts=4)
    w.file("VOIP-1")
    w.answer_all(APPROVE)

    assert w.runs() == {"VOIP-1": EXPECTED}, "the run went on without Jira and ended"
    failed = effects(w.svc, "failed")
    assert [kind for _, kind, _, _ in failed] == ["comment", "comment", "comment", "close"]
    for _, _, attempts, error in failed:
        assert attempts == 4 and error.startswith("still failing after 4 attempts: ") and "HTTP 503" in error
    # Bounded: 4 attempts of 6 requests each per write, the runner waiting 2, 4, 8 s between attempts.
    assert len(w.faults.injected("jira")) == 4 * 6 * len(failed)
    assert w.delays == [2, 4, 8] * len(failed)
    assert w.jira.issues.get("VOIP-1") is None or w.jira.issue("VOIP-1").comments == []
    assert metric(w, "connbot_effects_failed") == {"kind=close": 1, "kind=comment": 3}
    assert metric(w, "connbot_effects_pending") == {"": 0}
    gave_up = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(gave_up) == 4 and all("failed for good: still failing after 4 attempts" in m for m in gave_up)
    run = w.web.get("/api/runs/1").get_json()
    assert run["state"] == "ended" and [e["kind"] for e in run["failed_effects"]] == [
        "comment",
        "comment",
        "comment",
        "close",
    ]
    assert "HTTP 503" in run["failed_effects"][0]["error"]


def test_slack_down_for_good_says_so_on_the_ticket_and_the_question_is_answered_on_the_desk(world) -> None:  # type: ignore[no-untyped-def]
    w = world(Faults(rate=0.0, down={"slack"}), effect_attempts=3)
    w.file("VOIP-1")
    w.answer_all(APPROVE)

    assert w.runs() == {"VOIP-1": EXPECTED}
    assert [(kind, attempts) for _, kind, attempts, _ in effects(w.svc, "failed")] == [("prompt.post", 3)]
    assert w.slack.posts() == [] and len(w.faults.injected("slack")) == 3
    said = [c for c in w.jira.issue("VOIP-1").comments if "could not be posted in slack" in c]
    assert (
        len(said) == 1
        and "still failing after 3 attempts: Slack " in said[0]
        and "failed: internal_error" in said[0]
    )
    assert w.jira.issue("VOIP-1").status == "Done"
    assert metric(w, "connbot_effects_failed") == {"kind=prompt.post": 1}


def test_jira_refusing_connections_is_retried_and_its_writes_are_made_when_it_is_back(world) -> None:  # type: ignore[no-untyped-def]
    # Jira is down: nothing listens on its port (a loopback server, stopped), as when it restarts.
    state = simulated_jira.Jira(account=dict(BOT_USER))
    server = Server(simulated_jira.create(state)).start()
    server.stop()
    w = world(Faults(rate=0.0), jira_url=server.url, sweep_seconds=15)
    try:
        w.file("VOIP-1")
        w.run_for(60)

        # A minute of it: the ticket's first comment was tried 5 times, 2, 4, 8 and 16 s apart (the sweeps
        # every 15 s brought no extra attempt), the next one due 32 s later; not given up.
        [(_, kind, attempts, error)] = effects(w.svc, "pending")
        assert (kind, attempts) == ("comment", 5) and w.delays == [2, 4, 8, 16, 32]
        assert error == f"Jira at {server.url.removeprefix('http://')} refused the connection", error
        assert effects(w.svc, "failed") == [] and state.issues == {}

        server.start()  # Jira is back
        w.answer_all(APPROVE)
    finally:
        server.stop()
    assert w.runs() == {"VOIP-1": EXPECTED}
    assert effects(w.svc, "failed") == [] and effects(w.svc, "pending") == []
    issue = state.issue("VOIP-1")
    headings = [c.split("\n", 1)[0] for c in issue.comments]
    assert headings[0] == "h3. connbot is triaging this ticket" and len(headings) == 4, headings
    assert (issue.status, issue.resolution) == ("Done", "Fixed")


@pytest.mark.parametrize("back", [True, False], ids=["back-after-12-minutes", "down-for-good"])
def test_slack_down_for_minutes_a_post_is_retried_for_about_13_minutes(world, back) -> None:  # type: ignore[no-untyped-def]
    w = world(Faults(rate=0.0, down={"slack"}), sweep_seconds=15)  # CONNBOT_EFFECT_ATTEMPTS: 10
    w.file("VOIP-1")
    w.run_for(12 * 60)

    # The question's post was tried 9 times in 12 minutes, backing off 2 s doubling to 256 s, whatever
    # the sweeps every 15 s; its 10th and last attempt is due 766 s (about 13 minutes) after its first.
    [first, *_] = tried = w.faults.at("slack")
    assert [round(t - first) for t in tried] == [0, 2, 6, 14, 30, 62, 126, 254, 510]
    assert [(kind, n) for _, kind, n, _ in effects(w.svc, "pending") if n] == [("prompt.post", 9)]
    if back:
        w.faults.down.discard("slack")
    w.run_for(5 * 60)

    if back:  # made by its 10th attempt, once
        assert ("prompt.post", 10) in [(kind, n) for _, kind, n, _ in effects(w.svc, "done")]
        assert len(w.slack.posts()) == 1 and effects(w.svc, "failed") == effects(w.svc, "pending") == []
    else:
        assert [round(t - first) for t in w.faults.at("slack")][9:] == [766]
        [(_, kind, attempts, error)] = effects(w.svc, "failed")
        assert (kind, attempts) == ("prompt.post", 10)
        assert error.startswith("still failing after 10 attempts: Slack ") and "internal_error" in error
        said = [c for c in w.jira.issue("VOIP-1").comments if "could not be posted in slack" in c]
        assert len(said) == 1 and "still failing after 10 attempts" in said[0]
    w.answer_all(APPROVE)
    assert w.runs() == {"VOIP-1": EXPECTED}


@pytest.mark.parametrize(
    "system, step, action",
    [("ari", "check_account", "pbx.get_account"), ("app", "check_status", "app.get_status")],
)
def test_a_system_down_for_good_fails_the_step_into_its_failure_edge_with_the_reason(
    world, system, step, action
) -> None:  # type: ignore[no-untyped-def]
    w = world(Faults(rate=0.0, down={system}))
    w.file("VOIP-1")
    w.answer_all({})

    with w.svc.store.tx() as s:
        run = s.scalars(select(Run)).one()
        assert run.state == "ended", "not stuck"
        failed = next(r for r in run.steps if r.step == step)
        # A proxy's 503 is the system being down, not the app being offline (a finding of its own).
        assert failed.outcome == "error", (failed.outcome, failed.summary)
        # The step was tried CONNBOT_STEP_ATTEMPTS times (3), each with the transport's own retries.
        # Its row says why in words, the action's id and the request's path left to the log.
        assert " answered HTTP 503" in failed.summary and failed.summary.endswith("; tried 3 times.")
        assert action not in failed.summary and "/" not in failed.summary.split(":")[0]
        after = run.steps[run.steps.index(failed) + 1].step
        assert after == w.svc.playbooks.current().playbook.steps[step].on_failure
    # Bounded: the step's call was tried 3 x 6 times (the runner's attempts, each with the retry policy's),
    # the runner waiting 2 then 4 s between attempts; waits recorded, not slept.
    assert w.faults.injected(system)[:18] == ["503"] * 18 and w.delays[:2] == [2, 4]
    assert len([x for x in w.faults.timeline if x[0] == "sleep"]) >= 5
    assert any(
        failed.summary in c.replace("\\", "") or failed.summary[:60] in c
        for c in w.jira.issue("VOIP-1").comments
    ), "the reason is on the ticket"
