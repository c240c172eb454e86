"""Jira Service Management SLAs: the first public reply goes out within the first-response goal, a
question to agents near a breach is reminded of early with the level's group, and the desk, the
API and /metrics show the time left."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import responses

from bot.runs import sweeper
from tests.fakes import jira as fake_jira
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import FakeJira, configure, fixture

REQUEST = fixture("cloud_service_request_created.json")
FIRST_RESPONSE, RESOLUTION = "customfield_10030", "customfield_10031"
RECEIVED = "Thank you, we have your request and are checking your connection now."


@pytest.fixture
def rsps(monkeypatch):
    configure(monkeypatch, SLA_WARN_MINUTES="30")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def jira(rsps):
    return FakeJira(rsps)


def millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def request_at(now: dt.datetime, left: dict[str, dt.timedelta | None]) -> dict:
    """The recorded service request as Jira sends it at `now`, each SLA field's running cycle with
    the time `left` (None: the cycle is over, the goal met)."""
    payload = copy.deepcopy(REQUEST)
    payload["timestamp"] = millis(now)
    fields = payload["issue"]["fields"]
    for field, remaining in left.items():
        cycle = fields[field]["ongoingCycle"]
        if remaining is None:
            del fields[field]["ongoingCycle"]
            fields[field]["completedCycles"] = [{**cycle, "stopTime": {"epochMillis": millis(now)}}]
            continue
        cycle["breachTime"]["epochMillis"] = millis(now + remaining)
        cycle["remainingTime"]["millis"] = int(remaining.total_seconds() * 1000)
    return payload


def deliver(world, payload: dict, delivery: str = "d-1") -> None:
    assert fake_jira.deliver(world.svc, payload, delivery).status_code == 202


def test_the_first_reply_goes_out_at_once_while_the_first_response_clock_runs(jira, make_slack):
    world = make_slack(scripted_registry({}, systems=("pbx",)))
    deliver(world, request_at(world.now[0], {FIRST_RESPONSE: dt.timedelta(hours=1)}))
    issue = jira.issue("HELP-12")
    # Before anything else public, in the worker's first pass: well within the goal.
    assert len(issue.portal) == 1 and issue.portal[0].startswith(RECEIVED)
    assert world.open_prompt().step == "check_status"  # the run goes on, waiting for an agent


def test_no_needless_first_reply_once_the_first_response_goal_is_met(jira, make_slack):
    world = make_slack(scripted_registry({}, systems=("pbx",)))
    deliver(world, request_at(world.now[0], {FIRST_RESPONSE: None}))
    assert jira.issue("HELP-12").portal == []


@pytest.mark.parametrize(
    "left, reminded",
    [(dt.timedelta(minutes=40), 1), (dt.timedelta(hours=5), 0)],
    ids=["near a breach", "far from one"],
)
def test_a_question_near_a_breach_is_reminded_of_early_with_the_levels_group(
    jira, make_slack, left, reminded
):
    world = make_slack(scripted_registry({}, systems=("pbx",)))
    deliver(world, request_at(world.now[0], {RESOLUTION: left}))
    prompt = world.open_prompt()
    world.now[0] += dt.timedelta(minutes=10, seconds=1)  # 40 min left - 30 min of warning
    assert sweeper.sweep(world.svc.context)["reminded"] == reminded
    world.work()
    if reminded:
        reminder = world.api.to("chat.postMessage")[-1]
        assert reminder["thread_ts"] == prompt.channel_refs["slack"]["ts"]
        assert "<!subteam^S0LEVEL1>" in reminder["text"]
        assert "SLA: Time to resolution: 30 min left." in reminder["text"]


def test_an_sla_update_brings_the_reminder_forward(jira, make_slack):
    world = make_slack(scripted_registry({}, systems=("pbx",)))
    deliver(world, request_at(world.now[0], {RESOLUTION: dt.timedelta(hours=5)}))
    # An agent shortens the goal (a priority change): Jira sends the issue again with the new clock.
    later = world.now[0] + dt.timedelta(minutes=1)
    updated = request_at(later, {RESOLUTION: dt.timedelta(minutes=31)})
    updated["webhookEvent"] = "jira:issue_updated"
    deliver(world, updated, "d-2")
    world.now[0] = later + dt.timedelta(minutes=1, seconds=1)
    assert sweeper.sweep(world.svc.context)["reminded"] == 1


def test_the_desk_the_api_and_metrics_show_the_time_left(jira, make_slack, monkeypatch):
    world = make_slack(scripted_registry({}, systems=("pbx",)))
    now = dt.datetime.now(dt.UTC)  # the API and /metrics read the wall clock
    deliver(world, request_at(now, {FIRST_RESPONSE: None, RESOLUTION: dt.timedelta(minutes=20)}))
    [run] = world.web.get("/api/runs").get_json()["runs"]
    first, resolution = run["sla"]
    assert (first["name"], first["ongoing"], first["said"]) == (
        "Time to first response",
        False,
        "Time to first response: met",
    )
    assert resolution["name"] == "Time to resolution" and resolution["near"] is True
    assert (
        1140 <= resolution["seconds_left"] <= 1200 and resolution["said"] == "Time to resolution: 20 min left"
    )
    page = world.web.get(f"/runs/{run['id']}").get_data(as_text=True)
    assert "SLA: " in page and "Time to resolution: 20 min left" in page
    metrics = world.web.get("/metrics").get_data(as_text=True)
    left = next(
        line
        for line in metrics.splitlines()
        if line.startswith('connbot_sla_seconds_left{sla="Time to resolution"}')
    )
    assert 1140 <= float(left.split()[-1]) <= 1200
    assert 'connbot_sla_near_breach{sla="Time to resolution"} 1.0' in metrics
