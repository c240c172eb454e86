"""Done when: a storm of tickets against one lab PBX whose Asterisk is stopped ends in one incident,
one Slack message edited in place, at most two Jira writes per ticket before the PBX is back, PBX
checks bounded by the health-check schedule rather than by tickets, the tickets of a healthy PBX in
the same storm triaged as usual; and when Asterisk is started again, every ticket of the incident
closed (once), none lost, the parent issue resolved. Tickets arrive through signed Jira webhooks;
Jira, Slack and the PBXs are the simulators (Jira and Slack at the wire, the PBXs on loopback)."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload

from bot.cli.main import main
from bot.lab import Lab
from bot.lab.scenarios import SCENARIOS, storm_user
from bot.runs import identify, incidents, intake, prompts
from bot.runs.sweeper import sweep
from bot.state.models import Incident, PbxHealth, Prompt, Run, StepResult, Ticket
from bot.web.app import create_app
from integrations.slack.channel import SlackChannel
from integrations.slack.settings import SlackSettings
from simulators.slack import CHANNEL, SlackWebApi
from tests.fakes import jira as fake_jira
from tests.fakes.desk import csrf
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, InlineExecutor, click, form, signed

DOWN, HEALTHY = "asterisk_stopped", "healthy_after_reconnect"
USER_FIELD = "customfield_10050"


@dataclass
class Storm:
    svc: Any
    web: Any
    lab: Lab
    jira: fake_jira.FakeJira
    rsps: responses.RequestsMock
    slack: SlackWebApi
    filed: list[tuple[str, str]]  # (issue key, scenario)

    def file(self, scenario: str, n: int) -> str:
        """A new Jira issue about user `n` of the scenario's PBX, delivered by a signed webhook."""
        key = f"VOIP-{len(self.filed) + 1}"
        resp = fake_jira.post(self.web, fake_jira.lab_issue(key, scenario, n, USER_FIELD), f"storm-{key}")
        assert resp.status_code in (200, 202), resp.get_data(as_text=True)
        self.filed.append((key, scenario))
        return key

    def work(self) -> None:
        self.svc.queue.run_pending()

    def runs(self) -> dict[str, Run]:
        with self.svc.store.tx() as s:
            found = s.scalars(
                select(Run).join(Ticket).options(selectinload(Run.steps), selectinload(Run.ticket))
            )
            return {r.ticket.key: r for r in found}

    def writes(self, key: str) -> int:
        """Jira requests that changed the issue `key` (comments, transitions, edits, links)."""
        count = 0
        for call in self.rsps.calls:
            req = call.request
            if req.method not in ("POST", "PUT") or not req.url.startswith(fake_jira.URL):
                continue
            if (
                f"/issue/{key}/" in req.url
                or req.url.endswith(f"/issue/{key}")
                or (req.url.endswith("/issueLink") and json.loads(req.body)["outwardIssue"]["key"] == key)
            ):
                count += 1
        return count


@pytest.fixture
def storm(request, settings, make_services, slack_api) -> Iterator[Storm]:
    """The storm's world; `(parent project, users of the stopped PBX)` as the parameter (default OPS, 200)."""
    project, users = getattr(request, "param", ("OPS", 200))
    with Lab(
        settings.data_dir, reconnect_seconds=0.02, only=[DOWN, HEALTHY], users={DOWN: users, HEALTHY: 4}
    ) as lab:
        env = {
            **os.environ,
            **lab.environment(),
            **fake_jira.jira_env(USER_FIELD=USER_FIELD, INCIDENT_PROJECT=project, ESCALATION="{}"),
            "CONNBOT_APP_POLL_INTERVAL": "0.01",
            "CONNBOT_NET_TIMEOUT": "0.2",
            "CONNBOT_NET_PROBES": "1",
        }
        quick = settings.model_copy(
            update={"incident_check_seconds": 0.05, "incident_check_max_seconds": 0.2, "incident_batch": 25}
        )
        slack = SlackChannel(
            SlackSettings(
                bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack_api.url, channel=CHANNEL
            ),
            executor=InlineExecutor(),
        )
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            rsps.add_passthru("http://127.0.0.1")  # the lab's PBXs and app backends, the Slack stub
            jira = fake_jira.FakeJira(rsps)
            svc = make_services(settings=quick, environ=env, channels=[slack])
            yield Storm(svc, create_app(services=svc).test_client(), lab, jira, rsps, slack_api, [])


def checked_when_due(storm: Storm, incident_id: int) -> None:
    """Sweep once the incident's next check of its PBX is due, then work the queue. Its re-checks
    back off in wall-clock time (0.05 to 0.2 s here), so a sweep before then checks nothing: wait
    for the due time, not for a number of sweeps that a fast or a busy machine makes in it."""
    with storm.svc.store.tx() as s:
        due = s.get(Incident, incident_id).next_check_at
    time.sleep(max(0.0, (due - storm.svc.context.clock()).total_seconds()))
    sweep(storm.svc.context)
    storm.work()


def incident_posts(slack: SlackWebApi) -> list[dict[str, Any]]:
    return [
        a
        for a in slack.to("chat.postMessage")
        if (a.get("metadata") or {}).get("event_type") == "connbot_incident"
    ]


def test_a_storm_against_a_stopped_asterisk_is_one_incident_closed_when_it_is_back(storm):
    # The storm: 200 users of the stopped PBX and 4 of a healthy one (fewer than the 5 that make an
    # incident by count), filed in waves as workers take them (the first tickets are checked before
    # any incident exists).
    for wave in range(10):
        for n in range(wave * 20, wave * 20 + 20):
            storm.file(DOWN, n)
        if wave < 4:
            storm.file(HEALTHY, wave)
        storm.work()
        sweep(storm.svc.context)
    storm.work()
    sweep(storm.svc.context)

    with storm.svc.store.tx() as s:
        incidents = s.scalars(select(Incident)).all()
        assert [(i.pbx, i.cause, i.state) for i in incidents] == [(DOWN, "asterisk_down", "open")]
        inc = incidents[0]
        pbx_calls = s.scalar(
            select(func.count())
            .select_from(StepResult)
            .join(Run)
            .where(Run.pbx == DOWN, StepResult.action.startswith("pbx."))
        )
    runs = storm.runs()
    children = [k for k, sc in storm.filed if sc == DOWN]
    assert all(runs[k].incident_id == inc.id and runs[k].state == "held" for k in children)
    # PBX checks: what the first ticket did before the incident, and the incident's own checks
    assert pbx_calls <= 3 and inc.checks <= 12, (pbx_calls, inc.checks)
    # the healthy PBX's tickets were triaged as usual: closed after a reconnect, no incident
    for key, scenario in storm.filed:
        if scenario == HEALTHY:
            assert (runs[key].incident_id, runs[key].end_kind) == (None, "close")
            assert runs[key].steps[-1].step == "close_transient"
    # one Slack message, edited as tickets joined; no question per ticket
    posts = incident_posts(storm.slack)
    assert len(posts) == 1 and len(storm.slack.to("chat.update")) >= 2
    assert not [a for a in storm.slack.to("chat.postMessage") if a not in posts]
    last = storm.slack.to("chat.update")[-1]
    assert "*200* ticket(s), *200* user(s)" in json.dumps(last["blocks"])
    # at most two Jira writes per ticket: its first comment and the joining (a comment with the link)
    assert max(storm.writes(k) for k in children) <= 2
    parent = storm.jira.issue("OPS-1")
    assert parent.issue_type == "Task" and "Asterisk is down" in parent.summary
    assert {other for _, other, _ in parent.links} == set(children)
    joined = storm.jira.issue(children[-1]).comments
    assert len(joined) == 1 and "Part of incident 1: Asterisk is down on PBX asterisk_stopped" in joined[0]
    assert "level by level" not in joined[0]  # it waits for the incident, it runs no playbook

    # Asterisk is started again: the next check sees it, every app is re-checked and registers.
    storm.lab.repair(DOWN)
    for _ in range(5):  # checks of the PBX, each once it is due: the first should find it back
        checked_when_due(storm, inc.id)
        with storm.svc.store.tx() as s:
            if s.get(Incident, inc.id).parent_resolved:
                break
    runs = storm.runs()
    assert Counter(runs[k].end_kind for k in children) == Counter({"close": 200})
    for key in children:
        issue = storm.jira.issue(key)
        closed = "Closed: incident 1 is resolved (Asterisk is down, on PBX asterisk_stopped)"
        closings = [c for c in issue.comments if closed in c]
        assert issue.status == "Done" and len(closings) == 1, (key, issue.comments)
        steps = [s.step for s in runs[key].steps]
        assert steps.count("incident_recheck") == 1 and steps[-1] == "incident_recheck", steps
    # only tickets of the first wave ran checks of their own: their runs advance side by side, a step
    # per work item, until one of them finds the fault; every ticket after the incident opened none
    assert 1 <= sum(len(runs[k].steps) > 1 for k in children[:20]) < 20
    assert all(len(runs[k].steps) == 1 for k in children[20:])
    with storm.svc.store.tx() as s:
        inc = s.get(Incident, inc.id)
        assert inc.state == "closed" and inc.parent_resolved
        assert (
            "200 ticket(s) from 200 user(s): 200 closed after their app registered again" in inc.close_reason
        )
    assert storm.jira.issue("OPS-1").status == "Done"
    assert len(incident_posts(storm.slack)) == 1  # still the one message, now saying it is closed
    assert "Closed:" in json.dumps(storm.slack.to("chat.update")[-1]["blocks"])


# -- one incident at a time, on desk tickets: people's actions, thresholds, the periodic check

SIP_DOWN = "sip_stack_down"


@dataclass
class World:
    svc: Any
    web: Any
    lab: Lab
    slack: SlackWebApi

    def file(self, scenario: str, n: int) -> int:
        user = storm_user(SCENARIOS[scenario], n)
        _, run_id = intake.file_desk_ticket(
            self.svc.context,
            f"{user} cannot connect",
            "",
            f"{user}@example.com",
            user,
            {"lab_scenario": scenario},
        )
        return run_id

    def work(self, sweeps: int = 1) -> None:
        for _ in range(sweeps):
            self.svc.queue.run_pending()
            sweep(self.svc.context)
        self.svc.queue.run_pending()

    def incidents(self) -> list[Incident]:
        with self.svc.store.tx() as s:
            return list(s.scalars(select(Incident).order_by(Incident.id)))

    def run(self, run_id: int) -> Run:
        with self.svc.store.tx() as s:
            return s.scalars(
                select(Run)
                .where(Run.id == run_id)
                .options(selectinload(Run.steps), selectinload(Run.ticket).selectinload(Ticket.comments))
            ).one()

    def click(self, incident_id: int, action: str, user: str) -> None:
        body = form(
            click(str(incident_id), f"connbot_incident:{action}", user=user, action_ts=f"{time.time():.6f}")
        )
        resp = self.web.post("/slack/events", data=body, headers=signed(body))
        assert resp.status_code == 200, resp.get_data(as_text=True)


@pytest.fixture
def make_world(settings, make_services, slack_api) -> Iterator[Any]:
    labs: list[Lab] = []

    def make(users: dict[str, int], **policy: Any) -> World:
        lab = Lab(settings.data_dir, reconnect_seconds=0.02, only=list(users), users=users).start()
        labs.append(lab)
        env = {
            **os.environ,
            **lab.environment(),
            "CONNBOT_APP_POLL_INTERVAL": "0.01",
            "CONNBOT_NET_TIMEOUT": "0.2",
            "CONNBOT_NET_PROBES": "1",
        }
        quick = settings.model_copy(
            update={"incident_check_seconds": 0.05, "incident_check_max_seconds": 0.2, **policy}
        )
        slack = SlackChannel(
            SlackSettings(
                bot_token=BOT_TOKEN,
                signing_secret=SIGNING_SECRET,
                api_url=slack_api.url,
                channel=CHANNEL,
                answerers_l2="W222",
            ),
            executor=InlineExecutor(),
        )
        svc = make_services(settings=quick, environ=env, channels=[slack])
        return World(svc, create_app(services=svc).test_client(), lab, slack_api)

    yield make
    for lab in labs:
        lab.stop()


def test_an_incident_never_spans_two_pbx_instances(make_world):
    world = make_world({DOWN: 3, SIP_DOWN: 3})
    runs = [world.file(DOWN, n) for n in range(3)] + [world.file(SIP_DOWN, n) for n in range(3)]
    world.work()
    found = [(i.pbx, i.cause, i.state) for i in world.incidents()]
    assert found == [(DOWN, "asterisk_down", "open"), (SIP_DOWN, "sip_stack_down", "open")]
    by_pbx = {i.pbx: i.id for i in world.incidents()}
    for run_id in runs:
        run = world.run(run_id)
        assert (run.state, run.incident_id) == ("held", by_pbx[run.pbx])
    assert len(incident_posts(world.slack)) == 2


def test_restored_is_checked_first_then_every_ticket_is_closed(make_world):
    world = make_world({DOWN: 3})
    runs = [world.file(DOWN, n) for n in range(3)]
    world.work()
    (inc,) = world.incidents()
    # Someone not allowed to act: refused, nothing changes.
    world.click(inc.id, "restored", "W999")
    assert "you may not act on incidents" in world.slack.to("chat.postEphemeral")[-1]["text"]
    # Allowed, but Asterisk still does not run: the check disagrees, the incident stays open. Who
    # said it is named as the tickets name a Slack user, on the page and in the message alike.
    world.click(inc.id, "restored", "W222")
    told = world.slack.to("chat.postEphemeral")[-1]["text"]
    assert told.startswith("W222 in Slack said the PBX is restored: connbot checks it now")
    world.work()
    (inc,) = world.incidents()
    assert inc.state == "open" and inc.restored_by is None
    page = world.web.get(f"/incidents/{inc.id}").get_data(as_text=True)
    health = re.search(r'<dd id="health">(.*?)</dd>', page, re.S).group(1)
    assert "UTC: W222 in Slack said it is restored, but the check at" in health
    assert "Asterisk on 127.0.0.1 does not answer" in health
    shown = world.slack.to("chat.update")[-1]["blocks"][1]["text"]["text"]
    assert "W222 in Slack said it is restored, but the check at" in shown
    assert all(world.run(r).state == "held" for r in runs)
    # Repaired: Restored again, the check agrees, every app registers, every ticket is closed.
    world.lab.repair(DOWN)
    world.click(inc.id, "restored", "W222")
    world.work(sweeps=3)
    (inc,) = world.incidents()
    assert inc.state == "closed" and inc.checks >= 1 and "back after" in inc.close_reason
    for run_id in runs:
        run = world.run(run_id)
        assert (run.end_kind, run.ticket.status) == ("close", "closed")
        closing = run.ticket.comments[-1].body
        assert "Closed: incident 1 is resolved (Asterisk is down, on PBX asterisk_stopped)" in closing
        assert "Cause, as found from " in closing and " on: Asterisk on " in closing  # over now
        assert "- [L1] Re-check the app now that the PBX is back: The app registers again (" in closing
    assert len(incident_posts(world.slack)) == 1


def test_not_a_pbx_problem_sends_every_ticket_back_to_its_own_checks(make_world, monkeypatch, settings):
    """Who took and dismissed the incident in Slack is named as the tickets name a Slack user ('W222
    in Slack'): on the tickets, the page, the CLI, the parent's summary; the message mentions them."""
    world = make_world({DOWN: 2})
    runs = [world.file(DOWN, n) for n in range(2)]
    world.work()
    (inc,) = world.incidents()
    world.click(inc.id, "assign", "W222")
    assert world.slack.to("chat.postEphemeral")[-1]["text"] == f"Incident {inc.id} is taken by W222 in Slack."
    assert "Taken by <@W222>" in world.slack.to("chat.update")[-1]["blocks"][1]["text"]["text"]
    world.click(inc.id, "dismiss", "W222")
    told = world.slack.to("chat.postEphemeral")[-1]["text"]
    assert told.startswith(f"W222 in Slack said incident {inc.id} is not a PBX problem: its tickets are")
    # no longer open from the click on, before any sweep: no actions on its page, none taken
    assert world.web.get(f"/api/incidents/{inc.id}").get_json()["state"] == "recovering"
    page = world.web.get(f"/incidents/{inc.id}").get_data(as_text=True)
    assert 'id="incident-actions"' not in page
    assert (
        '<dd id="dismissed">W222 in Slack said it is not a PBX problem: its tickets go back to their own '
        "playbook</dd>" in page
    )
    late = world.web.post(f"/api/incidents/{inc.id}/restored", json={"by": "carol"})
    assert (
        late.status_code == 400 and f"incident {inc.id} is recovering, not open" in late.get_json()["message"]
    )
    world.work()
    incidents = world.incidents()
    assert incidents[0].state == "closed" and incidents[0].owner == "W222"
    summary = "W222 in Slack said it is not a PBX problem; 2 ticket(s) are checked on their own."
    shown = world.web.get(f"/api/incidents/{inc.id}").get_json()
    assert (shown["summary"], shown["owner_via"], shown["dismissed_via"]) == (summary, "slack", "slack")
    assert f"Closed: {summary}" in world.slack.to("chat.update")[-1]["blocks"][1]["text"]["text"]
    page = world.web.get(f"/incidents/{inc.id}").get_data(as_text=True)
    assert '<dd id="owner">W222 in Slack</dd>' in page and f'<dd id="summary">{summary}</dd>' in page
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    cli = CliRunner().invoke(main, ["incidents", "show", str(inc.id)]).output
    assert "taken by: W222 in Slack\n" in cli and f"outcome: {summary}\n" in cli
    for run_id in runs:
        run = world.run(run_id)
        assert "incident_recheck" not in [s.step for s in run.steps]
        said = [c.body for c in run.ticket.comments]
        assert any("W222 in Slack said incident 1 is not a PBX problem." in c for c in said)
        # back on their own way: the playbook's own question about the cause, one per ticket
        assert run.state == "waiting" and run.incident_id == incidents[0].id
    # Their findings named this fault before the person's word: it does not open an incident again.
    assert len(incidents) == 1


def test_tickets_reporting_the_same_error_open_an_incident_and_a_healthy_pbx_closes_it(make_world):
    """The threshold: 3 tickets of one PBX whose apps report the same error within the window open an
    incident; the PBX's check finds it healthy and the apps reconnect: a false alarm, closed by itself."""
    world = make_world({HEALTHY: 3}, incident_threshold=3)
    runs = [world.file(HEALTHY, n) for n in range(3)]
    world.work(sweeps=3)
    (inc,) = world.incidents()
    assert (inc.pbx, inc.cause, inc.opened_by) == (
        HEALTHY,
        "reports:timeout",
        "3 tickets with the app error 'timeout' within 10 min",
    )
    assert inc.state == "closed" and inc.close_reason.startswith(
        "3 tickets report the same error on PBX healthy_after_reconnect (false alarm"
    )
    # the runs advance side by side (a step per work item): all three were still going when the third
    # report opened the incident, so each joined it before its next step, was re-checked and closed
    ends = [world.run(r) for r in runs]
    assert [r.end_kind for r in ends] == ["close"] * 3
    assert [r.incident_id for r in ends] == [inc.id] * 3


def test_the_periodic_check_opens_an_incident_before_any_ticket(make_world):
    world = make_world({DOWN: 2, HEALTHY: 1}, health_check_seconds=60)
    world.work()
    assert [(i.pbx, i.cause, i.opened_by) for i in world.incidents()] == [
        (DOWN, "asterisk_down", "the periodic health check")
    ]
    run_id = world.file(DOWN, 1)
    world.work()
    run = world.run(run_id)
    assert run.state == "held" and run.steps == []  # joined at once: no check of its own
    (comment,) = [c.body for c in run.ticket.comments]
    assert "Part of incident 1: Asterisk is down on PBX asterisk_stopped" in comment
    assert "Checked against PBX asterisk_stopped" in comment
    # the checks are due once a minute: sweeping again does not check again
    checked = world.svc.store.tx
    with checked() as s:
        before = {h.name: h.checked_at for h in s.scalars(select(PbxHealth))}
    world.work(sweeps=3)
    with checked() as s:
        assert {h.name: h.checked_at for h in s.scalars(select(PbxHealth))} == before


def test_incidents_on_the_desk_the_api_the_cli_and_metrics(make_world, monkeypatch, settings):
    world = make_world({DOWN: 2})
    for n in range(2):
        world.file(DOWN, n)
    world.work()
    (inc,) = world.incidents()
    listed = world.web.get("/api/incidents").get_json()["incidents"]
    assert [(i["id"], i["state"], i["tickets"], i["users"]) for i in listed] == [(inc.id, "open", 2, 2)]
    one = world.web.get(f"/api/incidents/{inc.id}").get_json()
    assert [c["ticket"] for c in one["children"]] == ["DESK-1", "DESK-2"]
    assert world.web.get("/api/incidents/99").status_code == 404
    bad = world.web.post(f"/api/incidents/{inc.id}/reboot", json={"by": "Carol"})
    assert bad.status_code == 400 and "unknown action 'reboot'" in bad.get_json()["message"]
    bad = world.web.post(f"/api/incidents/{inc.id}/parent", json={"by": "Carol", "key": "not a key"})
    assert bad.status_code == 400 and "is not an issue key" in bad.get_json()["message"]
    done = world.web.post(f"/api/incidents/{inc.id}/assign", json={"by": "Carol"}).get_json()
    assert done["done"] == f"Incident {inc.id} is taken by Carol." and done["incident"]["owner"] == "Carol"
    page = world.web.get(f"/incidents/{inc.id}").get_data(as_text=True)
    assert "Asterisk is down" in page and "DESK-2" in page and "Taken by" in page
    run_page = world.web.get(f"/runs/{one['children'][0]['run']}").get_data(as_text=True)
    assert f'href="/incidents/{inc.id}">incident {inc.id}</a>: its PBX fails for every user' in run_page
    assert "Asterisk is down" in world.web.get("/incidents").get_data(as_text=True)
    metrics = world.web.get("/metrics").get_data(as_text=True)
    assert 'connbot_incidents{state="open"} 1.0' in metrics
    assert f'connbot_incident_tickets{{incident="{inc.id}",pbx="{DOWN}"}} 2.0' in metrics
    # the CLI reads the same store
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    shown = CliRunner().invoke(main, ["incidents", "show", str(inc.id)])
    assert shown.exit_code == 0 and "tickets: 2 from 2 users" in shown.output and "DESK-1" in shown.output
    listed_cli = CliRunner().invoke(main, ["incidents", "list", "--json"])
    assert json.loads(listed_cli.output)[0]["title"] == "Asterisk is down"
    missing = CliRunner().invoke(main, ["incidents", "close", "99", "--by", "Carol"])
    assert missing.exit_code == 1 and "no incident 99" in missing.output
    closed = CliRunner().invoke(main, ["incidents", "close", str(inc.id), "--by", "Carol"])
    assert closed.exit_code == 0 and "is not a PBX problem" in closed.output
    world.work()
    assert "connbot_incident_settle_seconds_count 0.0" in world.web.get("/metrics").get_data(as_text=True)


# the lab's PBX-side presets with incidents on (the default): the incident each opens, named from the
# PBX's own check, and the ticket closed once a person repairs the fault and says Restored
PBX_SIDE = {
    "asterisk_stopped": "asterisk_down",
    "sip_stack_down": "sip_stack_down",
    "asterisk_module_down": "sip_stack_down",
    "realtime_db_down": "realtime_db_down",
    "database_down": "realtime_db_down",
    "network_down": "server_network_fault",
}


def test_each_pbx_side_lab_preset_opens_the_incident_of_its_fault(make_world):
    world = make_world(dict.fromkeys(PBX_SIDE, 1))
    runs = {name: world.file(name, 0) for name in PBX_SIDE}
    world.work()
    found = {i.pbx: i for i in world.incidents()}
    assert {pbx: i.cause for pbx, i in found.items()} == PBX_SIDE
    assert all("confirmed by a check of PBX" in i.opened_by for i in found.values())
    for name, inc in found.items():
        assert world.run(runs[name]).state == "held"
        world.lab.repair(name)
        resp = world.web.post(f"/api/incidents/{inc.id}/restored", json={"by": "Carol"})
        assert resp.status_code == 200, resp.get_json()
    world.work(sweeps=3)
    for name, run_id in runs.items():
        run = world.run(run_id)
        assert (run.end_kind, run.ticket.status) == ("close", "closed"), name
        assert found[name].title in run.ticket.comments[-1].body
    assert {i.state for i in world.incidents()} == {"closed"}


def test_an_open_incident_is_reminded_in_its_message_thread(make_world):
    world = make_world({DOWN: 1}, incident_remind_minutes=0.001)
    world.file(DOWN, 0)
    world.work()
    time.sleep(0.1)
    world.work()
    assert len(incident_posts(world.slack)) == 1
    replies = [a for a in world.slack.to("chat.postMessage") if a.get("thread_ts")]
    assert replies, "no reminder"
    ts = world.incidents()[0].message["slack"]["ts"]
    assert all(r["thread_ts"] == ts for r in replies)
    assert replies[0]["text"].startswith("Reminder: incident 1 is still open since")
    assert "Asterisk on 127.0.0.1 does not answer" in replies[0]["text"]


def test_only_a_person_who_acted_in_slack_is_mentioned_on_the_incident(make_world):
    """A name given on the desk or the API pings nobody, even one that looks like a Slack user id:
    the incident's message and its reminders name it as text; whoever acts in Slack is mentioned."""
    world = make_world({DOWN: 1}, incident_remind_minutes=0.001)
    world.file(DOWN, 0)
    world.work()
    (inc,) = world.incidents()
    for action in ("restored", "assign"):
        resp = world.web.post(f"/api/incidents/{inc.id}/{action}", json={"by": "U024BE7LH"})
        assert resp.status_code == 200, resp.get_json()
    shown = world.slack.to("chat.update")[-1]["blocks"][1]["text"]["text"]
    assert "U024BE7LH said it is restored" in shown and "Taken by U024BE7LH" in shown
    time.sleep(0.1)
    world.work()
    reminder = [a["text"] for a in world.slack.to("chat.postMessage") if a.get("thread_ts")][-1]
    assert reminder.startswith("U024BE7LH Reminder: incident 1 is still open")
    said = json.dumps([world.slack.to("chat.update"), world.slack.to("chat.postMessage")])
    assert "<@U024BE7LH>" not in said
    world.click(inc.id, "assign", "W222")
    assert "Taken by <@W222>" in world.slack.to("chat.update")[-1]["blocks"][1]["text"]["text"]
    time.sleep(0.1)
    world.work()
    reminder = [a["text"] for a in world.slack.to("chat.postMessage") if a.get("thread_ts")][-1]
    assert reminder.startswith("<@W222> Reminder: incident 1 is still open")


def test_who_acted_on_the_desk_the_api_or_the_cli_is_named_as_given(make_world, monkeypatch, settings):
    """A person who took, restored or dismissed the incident on the desk, through the API or with the
    connbot command is their name as given, even one like a Slack user id: never 'in Slack', never a
    mention; the incident keeps where each acted."""
    world = make_world({DOWN: 1})
    run_id = world.file(DOWN, 0)
    world.work()
    (inc,) = world.incidents()
    name = "U024BE7LH"
    # the desk's form: taken
    token = csrf(world.web, f"/incidents/{inc.id}")
    form = {"csrf_token": token, "name": name, "action": "assign"}
    page = world.web.post(f"/incidents/{inc.id}", data=form, follow_redirects=True).get_data(as_text=True)
    assert f"Incident {inc.id} is taken by {name}." in page and f'<dd id="owner">{name}</dd>' in page
    # the API: restored, while Asterisk still does not run
    done = world.web.post(f"/api/incidents/{inc.id}/restored", json={"by": name}).get_json()
    assert done["done"].startswith(f"{name} said the PBX is restored: connbot checks it now")
    assert (done["incident"]["owner_via"], done["incident"]["restored_via"]) == ("desk", "api")
    world.work()
    shown = world.web.get(f"/api/incidents/{inc.id}").get_json()
    assert shown["health"].startswith(f"{name} said it is restored, but the check at")
    # the CLI: not a PBX problem
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    closed = CliRunner().invoke(main, ["incidents", "close", str(inc.id), "--by", name])
    assert closed.output.startswith(f"{name} said incident {inc.id} is not a PBX problem: its tickets")
    world.work()
    summary = f"{name} said it is not a PBX problem; 1 ticket(s) are checked on their own."
    shown = world.web.get(f"/api/incidents/{inc.id}").get_json()
    assert (shown["summary"], shown["owner_via"], shown["dismissed_via"]) == (summary, "desk", "cli")
    cli = CliRunner().invoke(main, ["incidents", "show", str(inc.id)]).output
    assert f"taken by: {name}\n" in cli and f"outcome: {summary}\n" in cli
    said = [c.body for c in world.run(run_id).ticket.comments]
    assert any(f"{name} said incident {inc.id} is not a PBX problem." in c for c in said)
    slack = json.dumps([world.slack.to("chat.update"), world.slack.to("chat.postMessage")])
    assert f"Closed: {summary}" in slack
    assert "in Slack" not in json.dumps(said) + slack and f"<@{name}>" not in slack


@pytest.mark.parametrize("storm", [("OPS", 2)], indirect=True)
def test_a_parent_issue_refused_while_jira_restarts_is_made_when_it_is_back(storm):
    """Jira refuses connections (restarting) when the incident is first tended: its parent issue is
    asked for again at the next sweeps, not given up, and made once Jira is back."""
    ctx = storm.svc.context
    with storm.svc.store.tx() as s:
        inc_id = incidents.open_incident(
            ctx, s, DOWN, "asterisk_down", "Asterisk is down", "Asterisk does not answer", {}, "a test"
        ).id
    storm.jira.down = True
    for _ in range(3):
        sweep(ctx)
        storm.work()
        with storm.svc.store.tx() as s:
            inc = s.get(Incident, inc_id)
        assert (inc.parent_key, inc.parent_error) == (None, "")
    assert storm.jira.issues == {}

    storm.jira.down = False  # Jira is back
    sweep(ctx)
    storm.work()
    with storm.svc.store.tx() as s:
        inc = s.get(Incident, inc_id)
    assert (inc.parent_key, inc.parent_error) == ("OPS-1", "")
    assert "Asterisk is down" in storm.jira.issue("OPS-1").summary


@pytest.mark.parametrize("storm", [("NOPE", 3)], indirect=True)
def test_without_a_parent_issue_the_tickets_are_told_alone_and_the_page_says_why(storm):
    """The parent issue's project does not exist: Jira refuses it for good; the tickets still get
    their joining comment (no link), and the incident says why there is no parent issue."""
    keys = [storm.file(DOWN, n) for n in range(3)]
    for _ in range(3):
        storm.work()
        sweep(storm.svc.context)
    with storm.svc.store.tx() as s:
        (inc,) = s.scalars(select(Incident)).all()
    assert inc.parent_key is None and "valid project is required" in inc.parent_error
    for key in keys:
        said = [c for c in storm.jira.issue(key).comments if "Part of incident 1" in c]
        assert len(said) == 1 and storm.jira.issue(key).links == []
    page = storm.web.get(f"/incidents/{inc.id}").get_data(as_text=True)
    assert "none: Jira answered HTTP 400" in page
    created = [c for c in storm.rsps.calls if c.request.method == "POST" and c.request.url.endswith("/issue")]
    assert len(created) == 1, "a parent refused for good is not asked for again at every sweep"


@pytest.mark.parametrize("storm", [("OPS", 2)], indirect=True)
def test_on_a_service_request_the_customer_hears_plain_words_and_agents_the_evidence(storm):
    """Jira Service Management: the joining note (PBX names, findings) is internal; the customer gets
    the public reply that a server problem affects several users, and at the end that the app connects."""
    keys = []
    for n in range(2):
        key = f"HELP-{n + 1}"
        payload = fake_jira.lab_issue(key, DOWN, n, USER_FIELD)
        payload["issue"]["fields"]["project"]["projectTypeKey"] = "service_desk"
        assert fake_jira.post(storm.web, payload, f"jsm-{key}").status_code == 202
        keys.append(key)
    for _ in range(2):
        storm.work()
        sweep(storm.svc.context)
    for key in keys:
        issue = storm.jira.issue(key)
        (reply,) = issue.portal
        assert reply.startswith("A server problem is affecting several users; we will update you here.")
        assert any("Part of incident 1" in c for c in issue.comments)  # for agents only
    storm.lab.repair(DOWN)
    with storm.svc.store.tx() as s:
        inc_id = s.scalars(select(Incident.id)).one()
    for _ in range(5):  # checks of the PBX, each once it is due: the first should find it back
        checked_when_due(storm, inc_id)
        if all(r.state == "ended" for r in storm.runs().values()):
            break
    for key in keys:
        said = storm.jira.issue(key).portal
        assert said[-1].startswith("Your app connects again, so we are closing this request."), said
        assert not any("127.0.0.1" in c or "Asterisk" in c for c in said)


def test_an_incident_opened_by_count_is_named_by_its_first_check(make_world):
    """An incident the threshold opened (the tickets' apps say "refused", nobody knows why yet): its
    first check of the PBX names what fails, and from then on the incident and its message say that."""
    world = make_world({DOWN: 2})
    with world.svc.store.tx() as s:
        opened_by = "2 tickets with the app error 'refused' within 10 min"
        incidents.open_incident(
            world.svc.context,
            s,
            DOWN,
            "reports:refused",
            "2 tickets report the same error",
            "...",
            {},
            opened_by,
        )
    run_id = world.file(DOWN, 0)
    world.work(sweeps=2)
    (inc,) = world.incidents()
    assert inc.opened_by == opened_by and world.run(run_id).incident_id == inc.id
    assert (inc.cause, inc.title, inc.active_key) == (
        "asterisk_down",
        "Asterisk is down",
        f"{DOWN}|asterisk_down",
    )
    assert inc.statement.startswith("Asterisk on 127.0.0.1 does not answer")
    shown = [*incident_posts(world.slack), *world.slack.to("chat.update")][-1]  # the message as it is now
    assert "Asterisk is down" in json.dumps(shown["blocks"]) and "same error" not in json.dumps(
        shown["blocks"]
    )


def test_a_question_answered_after_an_incident_opened_joins_it_before_any_check(make_world):
    """A run waiting for a person when its PBX's incident opens: once answered, it joins the incident
    before its next step rather than checking the PBX again on its own."""
    world = make_world({DOWN: 2})
    _, waiting = intake.file_desk_ticket(
        world.svc.context, "cannot connect", "", "nobody@example.com", None, {"lab_scenario": DOWN}
    )
    world.work()  # the app backend does not know the reporter: a person is asked who the user is
    assert world.run(waiting).state == "waiting"
    opener = world.file(DOWN, 0)
    world.work()
    (incident,) = world.incidents()
    assert world.run(opener).incident_id == incident.id and world.run(waiting).state == "waiting"

    with world.svc.store.tx() as s:
        prompt = prompts.open_for(s, s.get(Run, waiting))
        assert prompt is not None and prompt.kind == "identify"
        user = storm_user(SCENARIOS[DOWN], 1)
        prompts.answer_prompt(world.svc.context, s, prompt.id, identify.GIVEN, user, "Ana", prompts.Via.DESK)
    world.work()
    run = world.run(waiting)
    assert (run.state, run.incident_id) == ("held", incident.id)
    assert run.ticket.user_ref == user
    assert [(r.step, r.mode) for r in run.steps] == [
        (identify.STEP, "auto"),  # the look-up by e-mail, before the question
        (identify.STEP, "human"),
    ], "no check of its own after the answer"


DB_DOWN = "database_down"


def sent_back(world: World) -> tuple[int, Incident, str]:
    """A ticket of an incident a person dismissed, back on its own way: its playbook's question asks
    level 2 to fix the cause. Its run, the dismissed incident and the open question's id."""
    world.work()  # the periodic check opens the incident before any ticket
    run_id = world.file(DB_DOWN, 0)
    world.work()
    (dismissed,) = world.incidents()
    assert world.run(run_id).incident_id == dismissed.id
    world.click(dismissed.id, "dismiss", "W222")
    world.work(sweeps=2)
    with world.svc.store.tx() as s:
        prompt = prompts.open_for(s, s.get(Run, run_id))
        assert prompt is not None and prompt.step == "fix_cause" and prompt.state == "open"
        return run_id, dismissed, prompt.id


def check_again(world: World) -> Incident:
    """The periodic check, due at once (rather than in a minute): the incident it opens."""
    with world.svc.store.tx() as s:
        s.execute(update(PbxHealth).values(due_at=None))
    world.work()
    return world.incidents()[-1]


def answer(world: World, prompt_id: str, choice: str) -> None:
    with world.svc.store.tx() as s:
        prompts.answer_prompt(world.svc.context, s, prompt_id, choice, None, "carol", prompts.Via.DESK)
    world.work()


def test_a_ticket_sent_back_by_not_a_pbx_problem_is_not_taken_by_the_same_fault_opened_again(make_world):
    """The periodic check finds the fault a person dismissed and opens it as a new incident: the
    ticket sent back, whose question a person is working on, does not join it; their *Fixed* leads to
    connbot's own re-check of the ticket."""
    world = make_world({DB_DOWN: 1}, health_check_seconds=60)
    run_id, dismissed, prompt_id = sent_back(world)
    reopened = check_again(world)
    assert (reopened.id, reopened.cause, reopened.state) == (2, "realtime_db_down", "open")
    assert reopened.opened_by == "the periodic health check"
    assert world.run(run_id).state == "waiting"  # its question stays the person's

    world.lab.repair(DB_DOWN)
    answer(world, prompt_id, "fixed")
    run = world.run(run_id)
    assert [(r.step, r.outcome) for r in run.steps][-3:] == [
        ("fix_cause", "fixed"),
        ("recheck_l2", "registered"),  # carol's Fixed, checked by connbot
        ("close_l2_fixed", "closed"),
    ]
    assert (run.end_kind, run.ticket.status, run.incident_id) == ("close", "closed", dismissed.id)
    assert run.ticket.comments[-1].body.startswith("Closed: Close - fixed at the second level")
    assert not any("Part of incident 2" in c.body for c in run.ticket.comments)
    assert world.web.get("/api/incidents/2").get_json()["tickets"] == 0


def test_a_ticket_sent_back_by_not_a_pbx_problem_says_so_with_its_cause(make_world):
    """The ticket's own question about the fault, and its hand-over to level 3 once that did not help,
    say who dismissed which incident next to the cause; its comment does not call the incident over."""
    world = make_world({DB_DOWN: 1}, health_check_seconds=60)
    run_id, dismissed, prompt_id = sent_back(world)
    with world.svc.store.tx() as s:
        question = s.get(Prompt, prompt_id).question
    dismissal = f"W222 in Slack said incident {dismissed.id} is not a PBX problem."
    assert dismissal in question
    answer(world, prompt_id, "not_fixed")
    run = world.run(run_id)
    assert (run.end_kind, run.end_level) == ("escalate", 3)
    comments = [c.body for c in run.ticket.comments]
    heading = (
        f"Incident {dismissed.id} was dismissed as not a PBX problem: this ticket is checked on its own again"
    )
    assert any(c.startswith(heading) for c in comments)
    assert not any(" is over" in c for c in comments)
    handover = next(c for c in comments if c.startswith("Escalated to level 3"))
    assert f"{dismissal} Asked to do its fix, carol answered “Still failing”." in handover


def test_a_dismissed_incident_still_lists_the_tickets_it_sent_back(make_world):
    """A ticket sent back by *Not a PBX problem* joins a later incident of another fault of its PBX
    (Asterisk stops too): the dismissed incident still lists it, as its summary counts it."""
    world = make_world({DB_DOWN: 1}, health_check_seconds=60)
    run_id, dismissed, prompt_id = sent_back(world)
    world.lab.instances[DB_DOWN].pbx.stop()
    later = check_again(world)
    assert (later.id, later.cause) == (2, "asterisk_down")
    answer(world, prompt_id, "fixed")
    run = world.run(run_id)
    assert (run.state, run.incident_id) == ("held", later.id)  # a new fault: it joins that one

    shown = world.web.get(f"/api/incidents/{dismissed.id}").get_json()
    said = "W222 in Slack said it is not a PBX problem; 1 ticket(s) are checked on their own."
    assert shown["summary"] == said
    assert (shown["tickets"], shown["users"]) == (1, 1)
    assert [(c["run"], c["ticket"]) for c in shown["children"]] == [(run_id, run.ticket.key)]
    page = world.web.get(f"/incidents/{dismissed.id}").get_data(as_text=True)
    assert run.ticket.key in page and "No ticket has joined yet." not in page
    assert world.web.get(f"/api/incidents/{later.id}").get_json()["tickets"] == 1
