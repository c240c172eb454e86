"""Secrets (issue 7, item 6): with a canary value in every secret setting, the lab's PBX and app
secrets, and the SIP passwords the stand-in ARI answers in clear, a full run of every lab scenario
(desk tickets) and of a Jira ticket (Jira and Slack as they are in production, at the wire) leaves
no canary in the logs (DEBUG, every logger), the database (every row of every table), the ticket
comments (desk and Jira), the Slack requests' bodies, /metrics, the JSON API, or the errors kept on
effects and steps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from sqlalchemy import select

from bot.lab import SCENARIOS, Lab
from bot.lab import web as lab_web
from bot.runs.sweeper import sweep
from bot.state.models import Base, Incident, Prompt, Run
from bot.web.app import create_app
from simulators.slack import SlackWebApi
from tests.fakes.jira import URL, FakeJira, sign
from tests.reliability.conftest import issue_event

CANARIES = {
    "CONNBOT_JIRA_API_TOKEN": "CANARY-jira-api-token-5e1",
    "CONNBOT_JIRA_PAT": "CANARY-jira-pat-8c2",
    "CONNBOT_JIRA_WEBHOOK_SECRET": "CANARY-jira-webhook-secret-0d3",
    "CONNBOT_JIRA_WEBHOOK_TOKEN": "CANARY-jira-webhook-token-7a4",
    "CONNBOT_SLACK_BOT_TOKEN": "xoxb-CANARY-slack-bot-9f5",
    "CONNBOT_SLACK_SIGNING_SECRET": "CANARY-slack-signing-3b6",
    "CONNBOT_SLACK_APP_TOKEN": "xapp-CANARY-slack-app-1c7",
    "CONNBOT_ARI_PASSWORD": "CANARY-ari-password-4e8",
    "CONNBOT_APP_API_TOKEN": "CANARY-app-token-6d9",
    "CONNBOT_ADMIN_TOKEN": "CANARY-admin-token-2a0",
    "CONNBOT_DESK_SECRET_KEY": "CANARY-desk-secret-key-5b1",
    "CONNBOT_PBX_DB_URL": "postgresql://asterisk:CANARY-pbx-db-global-8e2@127.0.0.1:1/asterisk",
}
DB_PASSWORD = "CANARY-pbx-db-fleet-3f3"  # in the fleet's db_url_env variable of every PBX instance


@pytest.fixture
def world(settings, monkeypatch, make_services, caplog) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    stub = SlackWebApi().start()
    with (
        Lab(settings.data_dir, reconnect_seconds=0.05, db_wait=0.1) as lab,
        responses.RequestsMock(assert_all_requests_are_fired=False) as rsps,
    ):
        rsps.add_passthru("http://127.0.0.1")  # the lab's stand-ins and the Slack stub are real servers
        jira = FakeJira(rsps)
        for name, value in {**lab.environment(), **CANARIES}.items():
            monkeypatch.setenv(name, value)
        directory = yaml.safe_load(lab.directory.read_text())
        for inst in directory["instances"]:
            inst["db_url_env"] = "LAB_PBX_DB_URL"
        path = Path(settings.data_dir) / "directory-with-db.yaml"
        path.write_text(yaml.safe_dump(directory))
        monkeypatch.setenv("LAB_PBX_DB_URL", f"postgresql://asterisk:{DB_PASSWORD}@127.0.0.1:1/asterisk")
        monkeypatch.setenv("CONNBOT_PBX_DIRECTORY", str(path))
        monkeypatch.setenv("CONNBOT_PBX_DB_TIMEOUT", "0.2")
        monkeypatch.setenv("CONNBOT_APP_POLL_INTERVAL", "0.02")
        monkeypatch.setenv("CONNBOT_NET_TIMEOUT", "0.2")
        monkeypatch.setenv("CONNBOT_JIRA_URL", URL)
        monkeypatch.setenv("CONNBOT_JIRA_EMAIL", "bot@example.com")
        monkeypatch.setenv("CONNBOT_JIRA_USER_FIELD", "customfield_10050")
        monkeypatch.setenv("CONNBOT_SLACK_API_URL", stub.url)
        monkeypatch.setenv("CONNBOT_SLACK_CHANNEL", "C0PROMPTS")
        svc = make_services()
        app = create_app(svc.settings, svc)
        lab_web.install(app, lab)
        yield svc, app.test_client(), lab, jira, stub
    stub.stop()


def drive(svc: Any, client: Any) -> None:
    """Work until every run ended, answering each question with its first option, as a person would.
    Every PBX's database is unreachable here (`LAB_PBX_DB_URL`): the PBXs' incidents are dismissed
    (Not a PBX problem), so that their tickets go on their own way to an end."""
    for _ in range(300):
        svc.queue.run_pending()
        sweep(svc.context)
        with svc.store.tx() as s:
            if not s.scalars(select(Run).where(Run.state != "ended")).first():
                return
            prompt = s.scalars(select(Prompt).where(Prompt.state == "open")).first()
            question = (prompt.id, prompt.options[0][0]) if prompt else None
            incident = s.scalars(select(Incident.id).where(Incident.state == "open")).first()
        if question:
            resp = client.post(
                f"/api/prompts/{question[0]}/answer", json={"answer": question[1], "by": "Carol"}
            )
            assert resp.status_code == 200, resp.get_json()
        elif incident:
            resp = client.post(f"/api/incidents/{incident}/dismiss", json={"by": "Carol"})
            assert resp.status_code == 200, resp.get_json()
    raise AssertionError("the runs did not end")


def database_text(svc: Any) -> str:
    """Every row of every table, as text."""
    lines = []
    with svc.store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            lines += [f"{table.name}: {tuple(row)!r}" for row in conn.execute(table.select())]
    return "\n".join(lines)


def test_no_secret_leaves_a_full_run_of_every_scenario_and_a_jira_ticket(world, caplog) -> None:  # type: ignore[no-untyped-def]
    svc, client, lab, jira, stub = world
    sip_passwords = {p for inst in lab.instances.values() for p in (inst.password, inst.app_password)}
    canaries = {
        *CANARIES.values(),
        DB_PASSWORD,
        *sip_passwords,
        *(v for k, v in lab.environment().items() if k.endswith(("_ARI_PASSWORD", "_APP_TOKEN"))),
    }
    canaries.add("CANARY-pbx-db-global-8e2")

    for name in SCENARIOS:
        resp = client.post("/api/lab/tickets", json={"summary": "The app cannot connect", "scenario": name})
        assert resp.status_code == 201, resp.get_json()
    body = issue_event("VOIP-77", customfield_10050="1001")
    resp = client.post(
        f"/webhooks/jira?token={CANARIES['CONNBOT_JIRA_WEBHOOK_TOKEN']}",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, CANARIES["CONNBOT_JIRA_WEBHOOK_SECRET"]),
            "X-Atlassian-Webhook-Identifier": "delivery-77",
        },
    )
    assert resp.status_code == 202, resp.get_json()
    drive(svc, client)

    # The passwords connbot set while fixing accounts are secrets too.
    canaries |= {inst.app_password for inst in lab.instances.values()}
    canaries |= {
        a["password"] for inst in lab.instances.values() for a in inst.objects.get("auth", {}).values()
    }
    with svc.store.tx() as s:
        runs = s.scalars(select(Run)).all()
        assert len(runs) == len(SCENARIOS) + 1 and all(r.state == "ended" for r in runs)
        run_ids, keys = [r.id for r in runs], [r.ticket.key for r in runs]
        incident_ids = list(s.scalars(select(Incident.id)))
    assert stub.posts(), "Slack was asked"
    assert jira.issue("VOIP-77").comments, "Jira was written"

    places = {
        "logs": "\n".join(
            f"{r.name} {r.getMessage()} {r.args!r} {r.exc_info!r} {r.exc_text}"
            for r in caplog.get_records("setup") + caplog.records
        ),
        "database": database_text(svc),
        "jira comments": json.dumps({k: vars(i) for k, i in jira.issues.items()}, default=sorted),
        "slack bodies": json.dumps([c.args for c in stub.calls]),
        "metrics": client.get("/metrics").get_data(as_text=True),
        "api": "\n".join(
            client.get(path).get_data(as_text=True)
            for path in [
                "/api/tickets",
                "/api/runs",
                "/api/prompts",
                "/api/incidents?state=all",
                *(f"/api/incidents/{i}" for i in incident_ids),
                *(f"/incidents/{i}" for i in incident_ids),
                *(f"/api/runs/{i}" for i in run_ids),
                *(f"/api/tickets/{k}" for k in keys),
            ]
        ),
    }
    assert "CONNBOT_" not in places["metrics"]
    for where, text in places.items():
        assert len(text) > 100, where
        leaked = sorted(c for c in canaries if c and c in text)
        assert not leaked, f"{where} holds {leaked}"
