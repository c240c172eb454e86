"""Item 4: Jira and Slack calls per run for each scenario of the seed playbook (fewer is better:
both rate-limit). Jira is the Jira simulator mounted on `responses` (tests/fakes/jira.py), Slack the
Web API simulator on loopback (simulators/slack.py); each scenario starts from a signed
jira:issue_created webhook and every human step is answered by a signed Slack click."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import responses

from tests.fakes.adapters import LEVEL_1_CANNOT_FIX as L1_DONE
from tests.fakes.adapters import observed


@dataclass
class Scenario:
    name: str
    script: dict[str, list[Any]]
    answers: list[str] = field(default_factory=list)  # the clicks on the prompts, in order


SCENARIOS = [
    Scenario(
        "temporary network problem: reconnect fixes it, closed",
        {"app.get_status": ["failed"], "app.reconnect": ["reconnected"]},
    ),
    Scenario(
        "wrong port in the app's configuration: fixed, closed",
        {**L1_DONE, "app.check_config": ["wrong_port"], "app.fix_config": ["fixed_connected"]},
    ),
    Scenario(
        "account missing on the PBX: database checked, created after a Slack approval, checked, closed",
        {
            **L1_DONE,
            "pbx.get_account": [observed("missing", ari="reachable", account="missing")],
            "pbx.check_database": [observed("db_ok", realtime_db="ok")],
            "pbx.create_account": ["created"],
            "app.recheck": ["registered"],
        },
        ["approve"],
    ),
    Scenario(
        "password mismatch: reset after an approval in Slack, closed",
        {
            **L1_DONE,
            "pbx.compare_credentials": ["password_mismatch"],
            "pbx.reset_password": ["updated_connected"],
        },
        ["approve"],
    ),
    Scenario(
        "level 1 and 2 find nothing: escalated to level 2, then to level 3",
        {
            **L1_DONE,
            "net.check_path": ["ok"],
            "app.test_network": ["ok"],
            "pbx.health": ["up"],
            "pbx.check_database": ["db_ok"],
            "logs.classify": ["none_found"],
        },
    ),
    Scenario(
        "network path broken: escalated to level 2, one question (Slack), the fix checked, closed",
        {
            **L1_DONE,
            "net.check_path": [observed("sip_no_response", server_path="sip_no_response", sip_port="silent")],
            "app.test_network": [observed("sip_no_response", device_path="sip_no_response")],
            "pbx.health": ["up"],
            "pbx.check_database": ["db_ok"],
            "app.recheck": ["registered"],
        },
        ["fixed"],
    ),
    Scenario(
        "nothing automated: the first step asked in Slack and answered, closed", {}, ["failed", "reconnected"]
    ),
]


def jira_kind(method: str, url: str) -> str:
    path = re.sub(r"\?.*$", "", url.split("/rest/api/2/", 1)[-1])
    return f"{method} " + re.sub(r"^issue/[^/]+", "issue/{key}", path)


def run_scenario(sc: Scenario, workdir: Path) -> dict[str, Any]:
    from sqlalchemy import select

    from bench.common import env_with
    from bot.services import Services
    from bot.settings import load_settings
    from bot.state.models import Prompt, Run
    from bot.web.app import create_app
    from integrations.slack.channel import SlackChannel
    from integrations.slack.settings import SlackSettings
    from simulators.slack import CHANNEL, SlackWebApi
    from tests.fakes.adapters import scripted_registry
    from tests.fakes.jira import FakeJira, fixture, jira_env, post
    from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, InlineExecutor, click, form, signed

    escalation = '{"2": {"assignee": "l2-lead", "components": ["Voice L2"]}, "3": {"assignee": "l3-lead"}}'
    env = env_with(jira_env(ESCALATION=escalation, RESOLUTION="Fixed"))
    stub = SlackWebApi().start()
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            FakeJira(rsps)
            slack = SlackChannel(
                SlackSettings(
                    bot_token=BOT_TOKEN,
                    signing_secret=SIGNING_SECRET,
                    api_url=stub.url,
                    channel=CHANNEL,
                    answerers_l1="W111",
                    answerers_l2="W111",
                ),
                executor=InlineExecutor(),
            )
            systems = sorted({a.split(".")[0] for a in sc.script})
            svc = Services.build(
                # one ticket's own way through the playbook (a storm's incidents are item 6)
                load_settings(env, data_dir=workdir / f"data-{time.monotonic_ns()}", incidents=False),
                registry=scripted_registry(sc.script, systems=systems),
                channels=[slack],
                environ=env,
            )
            svc.store.upgrade()
            web = create_app(services=svc).test_client()
            resp = post(web, fixture("cloud_issue_created.json"), "economy-1")
            assert resp.status_code == 202, resp.get_data(as_text=True)
            svc.queue.run_pending()
            for n, choice in enumerate(sc.answers):
                with svc.store.tx() as s:
                    prompt = s.scalars(select(Prompt).where(Prompt.state == "open")).one()
                form_body = form(
                    click(
                        prompt.id,
                        f"connbot_answer:{choice}",
                        message_ts=prompt.channel_refs["slack"]["ts"],
                        action_ts=f"1715000000.{n:06d}",
                    )
                )
                assert web.post("/slack/events", data=form_body, headers=signed(form_body)).status_code == 200
                svc.queue.run_pending()
            with svc.store.tx() as s:
                run = s.scalars(select(Run)).one()
                end = (
                    f"{run.end_kind} L{run.end_level}"
                    if run.end_kind == "escalate"
                    else str(run.end_kind or run.state)
                )
                steps = len(run.steps)
            jira = Counter(jira_kind(c.request.method or "", c.request.url) for c in rsps.calls)
            svc.close()
        return {
            "scenario": sc.name,
            "end": end,
            "steps": steps,
            "prompts": len(sc.answers),
            "jira": sum(jira.values()),
            "jira_by_kind": dict(jira),
            "slack": len(stub.calls),
            "slack_by_method": dict(Counter(c.method for c in stub.calls)),
        }
    finally:
        stub.stop()


def economy(workdir: Path) -> list[dict[str, Any]]:
    return [run_scenario(sc, workdir) for sc in SCENARIOS]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as tmp:
        for row in economy(Path(tmp)):
            print(json.dumps(row))
