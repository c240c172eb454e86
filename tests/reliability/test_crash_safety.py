"""Crash safety: 100 runs through the playbook (each with a Slack prompt a person answers) while the
worker process is SIGKILLed at random moments and restarted. Every run ends exactly once; every
desk comment and every Slack message is made once, none is lost. And the web process killed
between storing a Jira delivery and answering it: Jira retries the delivery, one run results."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from bot.runs import intake
from bot.runs.prompts import Via, answer_prompt
from bot.settings import Settings
from bot.state.models import Comment, Effect, Event, Prompt, Run
from tests.fakes.adapters import scripted_registry
from tests.fakes.slack_api import BOT_TOKEN, CHANNEL, SIGNING_SECRET
from tests.reliability.conftest import JIRA_SECRET, issue_event, jira_headers
from tests.reliability.procs import TcpProxy, free_port, kill, start_web, start_worker, stop, wait_for

RUNS = 100
SCRIPT = {
    "app.get_status": "failed",
    "app.reconnect": "still_failing",
    "app.get_last_error": "found",
    "app.check_config": "wrong_port",
    "app.fix_config": "forbidden",
    "app.recheck": "registered",
}
PATH = [
    "check_status",
    "force_reconnect",
    "record_error",
    "check_config",
    "fix_config",
    "fix_config_by_hand",
    "recheck_config",
    "close_config_fixed",
]


@pytest.mark.slow
def test_runs_survive_a_worker_killed_at_random_moments(
    settings: Settings, make_services, slack_api, tmp_path: Path
) -> None:
    svc = make_services(settings=settings, registry=scripted_registry({}))
    env = {
        "CONNBOT_DATA_DIR": str(settings.data_dir),
        "CONNBOT_LEASE_SECONDS": "2",
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "TEST_SCRIPT": json.dumps(SCRIPT),
        "TEST_LOG": str(tmp_path / "actions.log"),
        "TEST_DELAY": "0.02",
        "CONNBOT_SLACK_BOT_TOKEN": BOT_TOKEN,
        "CONNBOT_SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "CONNBOT_SLACK_CHANNEL": CHANNEL,
        "CONNBOT_SLACK_API_URL": slack_api.url,
    }
    run_ids = [
        intake.file_desk_ticket(svc.context, f"User {n} can't connect", "", "bob@example.com", str(1000 + n))[
            1
        ]
        for n in range(RUNS)
    ]
    rng = random.Random(20240506)
    kills = 0
    worker = start_worker(env)

    def answer_posted_prompts() -> None:
        with svc.store.tx() as s:
            ids = list(s.scalars(select(Prompt.id).where(Prompt.state == "open")))
            posted = [p for p in ids if s.get(Prompt, p).channel_refs.get("slack")]
        for prompt_id in posted:
            with svc.store.tx() as s:
                answer_prompt(svc.context, s, prompt_id, "connected", None, "W111", Via.DESK)

    def all_ended() -> bool:  # every end committed, and every effect made (the last run's close included)
        with svc.store.tx() as s:
            pending = s.scalar(select(func.count()).select_from(Effect).where(Effect.state == "pending"))
            return pending == 0 and all(s.get(Run, r).state == "ended" for r in run_ids)

    deadline = time.monotonic() + 240
    try:
        while not all_ended():
            assert time.monotonic() < deadline, "runs did not all end"
            time.sleep(rng.uniform(0.1, 1.2))
            answer_posted_prompts()
            if kills < 30:
                kill(worker)
                kills += 1
                worker = start_worker(env)
    finally:
        stop(worker)
    assert kills >= 10

    with svc.store.tx() as s:
        runs = [s.get(Run, r) for r in run_ids]
        for run in runs:
            assert run.state == "ended" and run.end_kind == "close" and run.ticket.status == "closed"
            assert [r.step for r in run.steps] == PATH, f"run {run.id}: each step recorded once, in order"
        markers = Counter(s.scalars(select(Comment.marker)))
        prompts = {p.run_id: p for p in s.scalars(select(Prompt))}
    assert len(prompts) == RUNS
    expected = {
        m
        for run in runs
        for m in (
            f"run:{run.id}:start",
            f"run:{run.id}:end",
            f"run:{run.id}:prompt:{prompts[run.id].id}:asked",
            f"run:{run.id}:prompt:{prompts[run.id].id}:settled",
        )
    }
    assert set(markers) == expected, "no desk comment lost, none extra"
    assert max(markers.values()) == 1, "no desk comment made twice"
    posts = Counter(
        pid
        for m in slack_api.posts()
        if m["thread_ts"] is None
        for pid in [p.id for p in prompts.values() if p.id in str(m["blocks"])]
    )
    assert set(posts) == {p.id for p in prompts.values()}, "every prompt posted to Slack"
    assert max(posts.values()) == 1, "no Slack message posted twice"
    settled = {u["ts"] for u in slack_api.to("chat.update")}
    assert settled == {p.channel_refs["slack"]["ts"] for p in prompts.values()}, "every Slack message settled"


@pytest.mark.slow
@pytest.mark.redis
def test_a_jira_delivery_stored_by_a_web_process_killed_before_its_answer_arrives_runs_once(
    tmp_path: Path, redis_url: str, make_services
) -> None:
    """The web process commits the event and answers, but the answer does not reach Jira (the network
    back is cut: a proxy holds it) and the process is killed: Jira sees no answer and retries the
    same delivery id."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data, queue_url=redis_url)
    svc = make_services(settings=settings, registry=scripted_registry({}))
    common = {
        "CONNBOT_DATA_DIR": str(data),
        "CONNBOT_JIRA_WEBHOOK_SECRET": JIRA_SECRET,
        "CONNBOT_SWEEP_SECONDS": "0.5",
        "CONNBOT_QUEUE_URL": redis_url,
    }
    port = free_port()
    web = start_web(common, port, workers=1)
    proxy = TcpProxy(port)  # Jira -> proxy -> web
    proxy.start()
    body = issue_event("VOIP-77")
    headers = jira_headers(body, "delivery-77")
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{proxy.port}/healthz"), 30, "gunicorn")
        proxy.hold_answers()
        with pytest.raises(requests.RequestException):
            requests.post(
                f"http://127.0.0.1:{proxy.port}/webhooks/jira", data=body, headers=headers, timeout=1.5
            )
        with svc.store.tx() as s:
            assert s.scalars(select(Event.delivery_id)).all() == ["delivery-77"], "stored before the answer"
        kill(web)
    finally:
        stop(web)
        proxy.close()
    url = f"http://127.0.0.1:{port}/webhooks/jira"
    web = start_web(common, port, workers=1)
    worker = start_worker(
        {
            **common,
            "TEST_SCRIPT": json.dumps(SCRIPT),
            "TEST_LOG": str(tmp_path / "actions.log"),
            "TEST_DELAY": "0",
        }
    )
    try:
        wait_for(lambda: _up(f"http://127.0.0.1:{port}/healthz"), 30, "gunicorn again")
        retry = requests.post(
            url, data=body, headers={**headers, "X-Atlassian-Webhook-Retry": "1"}, timeout=5
        )
        assert retry.status_code == 200 and retry.json()["status"] == "duplicate"

        def one_run_waiting() -> bool:
            with svc.store.tx() as s:
                return s.scalars(select(Run.state)).all() == ["waiting"]

        wait_for(one_run_waiting, 30, "the stored event's run (resumed by the sweeper)")
    finally:
        stop(web)
        stop(worker)
    with svc.store.tx() as s:
        assert len(s.scalars(select(Event)).all()) == 1 and len(s.scalars(select(Run)).all()) == 1


def _up(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
