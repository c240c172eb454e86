"""Done when: a storm of tickets against one lab PBX whose Asterisk is stopped ends in one incident,
one Slack message edited in place, at most two Jira writes per ticket before the PBX is back, PBX
checks bounded by the health-check schedule rather than by tickets, the tickets of a healthy PBX in
the same storm triaged as usual; and when Asterisk is started again, every ticket of the incident
closed (once), none lost, the parent issue resolved. Tickets arrive through signed Jira webhooks;
Jira, Slack and the PBXs are the simulators (Jira and Slack at the wire, the PBXs on loopback)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from bot.lab import Lab
from bot.lab.scenarios import SCENARIOS, storm_user
from bot.runs.sweeper import sweep
from bot.state.models import Incident, Run, StepResult, Ticket
from bot.web.app import create_app
from integrations.slack.channel import SlackChannel
from integrations.slack.settings import SlackSettings
from simulators.slack import CHANNEL, SlackWebApi
from tests.fakes import jira as fake_jira
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, InlineExecutor

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
        payload = fake_jira.fixture("cloud_issue_created.json")
        fields = payload["issue"]["fields"]
        payload["issue"]["key"] = key
        fields.update(
            summary=f"User {n} cannot connect",
            description="The app cannot connect since this morning.",
            lab_scenario=scenario,
            **{USER_FIELD: storm_user(SCENARIOS[scenario], n)},
        )
        body = json.dumps(payload).encode()
        resp = self.web.post(
            "/webhooks/jira",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature": fake_jira.sign(body, "s3cret"),
                "X-Atlassian-Webhook-Identifier": f"storm-{key}",
            },
        )
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
def storm(settings, make_services, slack_api, monkeypatch) -> Iterator[Storm]:
    with Lab(
        settings.data_dir, reconnect_seconds=0.02, only=[DOWN, HEALTHY], users={DOWN: 200, HEALTHY: 4}
    ) as lab:
        env = {
            **os.environ,
            **lab.environment(),
            **fake_jira.jira_env(USER_FIELD=USER_FIELD, INCIDENT_PROJECT="OPS", ESCALATION="{}"),
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

    # Asterisk is started again: the next check sees it, every app is re-checked and registers.
    storm.lab.repair(DOWN)
    for _ in range(20):
        sweep(storm.svc.context)
        storm.work()
        with storm.svc.store.tx() as s:
            if s.get(Incident, inc.id).parent_resolved:
                break
    runs = storm.runs()
    assert Counter(runs[k].end_kind for k in children) == Counter({"close": 200})
    for key in children:
        issue = storm.jira.issue(key)
        closings = [
            c for c in issue.comments if "Closed: Asterisk is down on PBX asterisk_stopped is resolved" in c
        ]
        assert issue.status == "Done" and len(closings) == 1, (key, issue.comments)
        steps = [s.step for s in runs[key].steps]
        assert steps.count("incident_recheck") == 1 and steps[-1] == "incident_recheck", steps
    # only the ticket whose checks found the fault ran its own checks; every other one none
    assert sum(len(runs[k].steps) > 1 for k in children) == 1
    with storm.svc.store.tx() as s:
        inc = s.get(Incident, inc.id)
        assert inc.state == "closed" and inc.parent_resolved
        assert (
            "200 ticket(s) from 200 user(s): 200 closed after their app registered again" in inc.close_reason
        )
    assert storm.jira.issue("OPS-1").status == "Done"
    assert len(incident_posts(storm.slack)) == 1  # still the one message, now saying it is closed
    assert "Closed:" in json.dumps(storm.slack.to("chat.update")[-1]["blocks"])
