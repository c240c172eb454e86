"""Chat control through signed requests to POST /slack/events: the /connbot command, the App Home
tab (views.publish) and the message shortcut, with the same permission rules as answering."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import yaml
from sqlalchemy import select

from bot.state.models import OperatorAction, Run
from bot.web.webhooks.slack_commands import COMMAND, SHORTCUT
from tests.conftest import shared_json
from tests.fakes.slack_api import CHANNEL, form, signed
from tests.unit.slack.test_interactions import file, human_everywhere


def shape(name: str) -> dict:
    """Slack's payload shape `name`, from the SDK team's samples in ../shared (else the test skips)."""
    return dict(shared_json(f"specs/slack/shapes/app-backend/{name}.json", f"Slack's {name} shape"))


def slash(world, text: str, user: str = "W111"):
    """A signed slash command, in the shape of Slack's SlashCommandPayload."""
    payload = shape("SlashCommandPayload")
    payload.update(
        token="unused",
        team_id="T0TEAM",
        channel_id=CHANNEL,
        user_id=user,
        user_name="someone",
        command=COMMAND,
        text=text,
        response_url=world.api.response_url(),
        trigger_id="13345224609.738474920.8088930838d88f008e0",
    )
    body = urllib.parse.urlencode({k: v for k, v in payload.items() if isinstance(v, str)})
    resp = world.web.post("/slack/events", data=body, headers=signed(body))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    world.work()
    answers = world.api.to("response_url")
    assert answers and answers[-1]["response_type"] == "ephemeral"
    return answers[-1]["text"]


def home_opened(world, user: str = "W111"):
    body = json.dumps(
        {
            "token": "unused",
            "team_id": "T0TEAM",
            "api_app_id": "A0CONNBOT",
            "type": "event_callback",
            "event_id": "Ev0HOME",
            "event_time": 1515449522,
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0HOME",
                "tab": "home",
                "event_ts": "1515449522000016",
            },
        }
    )
    headers = {**signed(body), "Content-Type": "application/json"}
    resp = world.web.post("/slack/events", data=body, headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    published = world.api.to("views.publish")[-1]
    assert published["user_id"] == user and published["view"]["type"] == "home"
    return "\n".join(
        b["text"]["text"] for b in published["view"]["blocks"] if b["type"] in ("section", "header")
    )


def test_status_rerun_and_cancel_from_the_slash_command(make_slack):
    world = make_slack(human_everywhere())
    _, run_id = file(world)
    status = slash(world, "status desk-1")
    assert "*DESK-1* Alice can't connect:" in status and f"/runs/{run_id}|run {run_id}> is waiting" in status
    assert "Waits for an answer to “Check the client's connection status”" in status

    assert "Say whom to hand" in slash(world, "hand DESK-1")
    handed = slash(world, "hand DESK-1 <@W222|dave> on call tonight")
    assert handed.startswith("<@W111> handed the question") and "to W222" in handed
    assert "handed to W222" in slash(world, "status DESK-1")
    assert "the question is withdrawn" in slash(world, "retry DESK-1 adapter is back")

    rerun = slash(world, "rerun DESK-1 the PBX was misconfigured")
    assert rerun.startswith("<@W111> re-ran ticket DESK-1 from the start as run")
    cancel = slash(world, "cancel DESK-1 duplicate")
    assert cancel.startswith("<@W111> cancelled run")
    assert "is cancelled" in slash(world, "status DESK-1")
    with world.svc.store.tx() as s:
        done = [(a.verb, a.who, a.via, a.why) for a in s.scalars(select(OperatorAction))]
    assert done == [
        ("hand", "W111", "slack", "on call tonight"),
        ("retry", "W111", "slack", "adapter is back"),
        ("rerun", "W111", "slack", "the PBX was misconfigured"),
        ("cancel", "W111", "slack", "duplicate"),
    ]
    assert "could not do this: run" in slash(world, "cancel DESK-1")
    assert "has not heard of this ticket" in slash(world, "status NOPE-9")
    assert "`/connbot status KEY`" in slash(world, "")
    assert "knows no command `explode`" in slash(world, "explode DESK-1")


def test_triage_and_incidents_from_the_slash_command(make_slack):
    from bot.state.models import Ticket

    world = make_slack(human_everywhere())
    with world.svc.store.tx() as s:
        s.add(Ticket(source="desk", key="DESK-40", summary="Printer jam", user_ref="1001", matched=False))
    assert "connbot left this ticket alone" in slash(world, "status DESK-40")
    assert slash(world, "triage DESK-40").startswith("<@W111> asked connbot to triage ticket DESK-40")
    with world.svc.store.tx() as s:
        assert s.scalars(select(Run)).one().state == "waiting"
    assert slash(world, "incidents") == "No incident is open."


def test_the_command_keeps_to_the_rules_of_answering(make_slack):
    world = make_slack(human_everywhere(), answerers_l1="W111")
    _, run_id = file(world)
    refused = slash(world, "cancel DESK-1", user="W999")
    assert refused.startswith("Sorry, only people who may answer level-1 questions") and "<@W111>" in refused
    assert "Sorry" in slash(world, "status DESK-1", user="W999")
    with world.svc.store.tx() as s:
        assert s.get(Run, run_id).state == "waiting"
        assert s.scalars(select(OperatorAction)).first() is None
    assert "is waiting" in slash(world, "status DESK-1", user="W111")
    body = urllib.parse.urlencode({"command": COMMAND, "text": "cancel DESK-1", "user_id": "W111"})
    forged = world.web.post("/slack/events", data=body, headers=signed(body, secret="not-the-secret"))
    assert forged.status_code == 401
    world.work()
    with world.svc.store.tx() as s:
        assert s.get(Run, run_id).state == "waiting"


def test_the_home_tab_lists_my_questions_and_my_teams_waiting_runs(make_slack):
    world = make_slack(human_everywhere(), answerers_l1="W111")
    _, run_id = file(world)
    mine = home_opened(world, "W111")
    assert "Your open questions" in mine and "Check the client's connection status (level 1" in mine
    assert f"/runs/{run_id}|DESK-1>" in mine and "Alice can't connect: waiting (level 1)" in mine

    other = home_opened(world, "W222")
    assert "No question waits for you." in other and "No run of your levels is under way." in other
    # handed to W222, the question is theirs (and they may answer it)
    prompt = world.open_prompt()
    api = world.web.post(f"/api/prompts/{prompt.id}/hand", json={"by": "W111", "to": "W222"})
    assert api.status_code == 200
    world.work()
    assert "— handed to you" in home_opened(world, "W222")
    reminder = world.api.posts()[-1]
    assert reminder["thread_ts"] == prompt.channel_refs["slack"]["ts"]
    assert reminder["text"].startswith("<@W222>, handed to you: Reminder: DESK-1")
    world.answer("failed", user="W222")
    with world.svc.store.tx() as s:
        assert s.get(Run, run_id).steps[0].answered_by == "W222"


def test_the_message_shortcut_shows_the_linked_tickets(make_slack):
    world = make_slack(human_everywhere())
    file(world)
    payload = shape("MessageShortcutPayload")
    payload.update(
        type="message_action",
        callback_id=SHORTCUT,
        trigger_id="13345224609.738474920.8088930838d88f008e0",
        response_url=world.api.response_url("shortcut"),
        team={"id": "T0TEAM", "domain": "example"},
        channel={"id": CHANNEL, "name": "support"},
        user={"id": "W111", "name": "someone"},
        message_ts="1700000000.000009",
    )
    payload["message"] = {
        "type": "message",
        "user": "W333",
        "ts": "1700000000.000009",
        "text": "can someone look at <https://jira.example.com/browse/DESK-1|DESK-1>?",
    }
    body = form(payload)
    assert world.web.post("/slack/events", data=body, headers=signed(body)).status_code == 200
    answer = world.api.to("response_url")[-1]["text"]
    assert answer.startswith("*DESK-1* Alice can't connect:") and "is waiting" in answer


def test_the_manifest_declares_the_command_the_shortcut_and_the_home_tab():
    manifest = yaml.safe_load((Path(__file__).resolve().parents[3] / "slack-app-manifest.yaml").read_text())
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == [COMMAND]
    assert [(s["type"], s["callback_id"]) for s in features["shortcuts"]] == [("message", SHORTCUT)]
    assert features["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert "commands" in manifest["oauth_config"]["scopes"]["bot"]
