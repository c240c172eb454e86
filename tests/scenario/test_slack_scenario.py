"""Done when: a desk ticket whose steps have no adapter is answered in Slack, click by click, until
the run ends; the ticket shows each prompt, each answer and who gave it."""

from __future__ import annotations

import json

from tests.fakes.adapters import scripted_registry
from tests.fakes.slack_api import CHANNEL, click


def test_a_desk_ticket_answered_in_slack_runs_to_its_end(make_slack):
    world = make_slack(scripted_registry({}, systems=()))  # no adapters: every step asks a person
    filed = world.web.post(
        "/api/tickets",
        json={
            "summary": "Bob's softphone says 'registration failed'",
            "reporter": "bob@example.com",
            "user": "1002",
        },
    )
    assert filed.status_code == 201
    key, run_id = filed.get_json()["key"], filed.get_json()["run"]
    world.work()

    # The first question appears in the stub Slack, with the ticket and the user.
    first = world.api.to("chat.postMessage")[0]
    assert first["channel"] == CHANNEL and key in first["text"]
    assert "1002" in json.dumps(first["blocks"]) and "Check the client" in json.dumps(first["blocks"])
    prompt = world.open_prompt()
    resp = world.send(
        click(
            prompt.id,
            "connbot_answer:failed",
            user="W111",
            message_ts=prompt.channel_refs["slack"]["ts"],
            action_ts="1715000000.000100",
        )
    )
    assert resp.status_code == 200
    world.work()

    # The run went on: the message was edited, and the next question was posted.
    assert "Answered by <@W111>" in json.dumps(world.api.to("chat.update")[0]["blocks"])
    second = world.open_prompt()
    assert second.step == "force_reconnect"
    # Its message lists what was found so far, each step's outcome in the playbook's words.
    asked_next = [p for p in world.api.to("chat.postMessage") if "thread_ts" not in p][1]
    found = json.dumps(asked_next["blocks"], ensure_ascii=False)
    assert (
        "[L1] Check the client's connection status: *The app's registration failed* (answered by <@W111>)"
        in found
    )
    assert "*failed*" not in found
    world.answer("reconnected", user="W222")

    run = world.web.get(f"/api/runs/{run_id}").get_json()
    assert run["state"] == "ended" and run["end"] == "close"
    assert [(s["step"], s["outcome"], s["answered_by"]) for s in run["steps"]] == [
        ("check_status", "failed", "W111"),
        ("force_reconnect", "reconnected", "W222"),
        ("close_transient", "closed", None),
    ]  # the API keeps the codes, with the words beside them
    assert [s["said"] for s in run["steps"]] == [
        "The app's registration failed",
        "The app reconnected",
        "Ticket closed",
    ]

    ticket = world.web.get(f"/api/tickets/{key}").get_json()
    assert ticket["status"] == "closed"
    bodies = [c["body"] for c in ticket["comments"]]
    asked = [b for b in bodies if b.startswith("Question for a person:")]
    answered = [b for b in bodies if "Answered by" in b]
    assert len(asked) == 2 and "Check the client's connection status" in asked[0]
    assert "Answered by W111 in Slack at" in answered[0] and answered[0].endswith(
        ": The app's registration failed"
    )
    assert "Answered by W222 in Slack at" in answered[1]
    # The closing note names who answered each step (a Slack user id said to be one) and reads each
    # step's outcome in words.
    closed = next(b for b in bodies if b.startswith("Closed:"))
    assert closed == bodies[-1]
    assert (
        "- [L1] Check the client's connection status: The app's registration failed "
        "(answered by W111 in Slack)\n" in closed
    )
    assert (
        "- [L1] Force a manual reconnection of the app: The app reconnected (answered by W222 in Slack)\n"
        in closed
    )
    assert ": failed" not in closed and ": reconnected" not in closed
    assert len(world.api.to("chat.update")) == 2 and len(world.api.to("chat.postEphemeral")) == 0
    assert (
        len([p for p in world.api.to("chat.postMessage") if "thread_ts" not in p]) == 2
    )  # one message per prompt
