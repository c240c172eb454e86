"""Forgeries: Jira webhooks without, with a wrong or a truncated signature, and Slack requests with a
wrong or stale signature (a captured request replayed after Slack's 5-minute window) are refused,
and nothing is stored, answered or run."""

from __future__ import annotations

import time

import pytest

from bot.runs import intake
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import sign
from tests.fakes.slack_api import SIGNING_SECRET, click, form, signed
from tests.reliability.conftest import JIRA_SECRET, assert_json_error, counts, issue_event

BODY = issue_event("VOIP-7")
VALID = sign(BODY, JIRA_SECRET)


@pytest.mark.parametrize(
    "signature",
    [
        None,  # no signature at all
        sign(BODY, "not-the-secret"),  # signed with another secret
        VALID[:40],  # truncated
        VALID[:-1],  # one hex digit short
        "sha256=",  # empty digest
        VALID.replace("sha256=", "sha1="),  # another algorithm's prefix
        sign(BODY + b" ", JIRA_SECRET),  # the signature of another body
    ],
)
def test_a_forged_jira_webhook_is_refused_and_nothing_is_stored(
    jira, make_services, signature: str | None
) -> None:
    from bot.web.app import create_app

    svc = make_services(registry=scripted_registry({}))
    headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "forged-1"}
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    resp = create_app(services=svc).test_client().post("/webhooks/jira", data=BODY, headers=headers)
    assert_json_error(resp, 401)
    svc.queue.run_pending()
    assert counts(svc).events == counts(svc).tickets == counts(svc).runs == 0
    assert svc.queue.depth() == 0


def test_the_genuine_jira_webhook_is_accepted(jira, make_services) -> None:
    """The control: the same body with its real signature is stored and run."""
    from bot.web.app import create_app

    svc = make_services(registry=scripted_registry({"app.get_status": ["connected"]}))
    resp = (
        create_app(services=svc)
        .test_client()
        .post(
            "/webhooks/jira",
            data=BODY,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature": VALID,
                "X-Atlassian-Webhook-Identifier": "real-1",
            },
        )
    )
    assert resp.status_code == 202
    svc.queue.run_pending()
    assert (counts(svc).events, counts(svc).runs) == (1, 1)


def open_prompt_world(make_slack):  # type: ignore[no-untyped-def]
    """connbot with Slack, one desk ticket whose run waits on a prompt posted to Slack."""
    world = make_slack(scripted_registry({}, systems=()))
    intake.file_desk_ticket(world.svc.context, "Bob can't connect", "", "bob@example.com", "1002")
    world.work()
    return world, world.open_prompt()


@pytest.mark.parametrize(
    "forgery", ["wrong secret", "6 minutes old", "replayed after the window", "no signature", "truncated"]
)
def test_a_forged_or_stale_slack_request_is_refused_and_nothing_is_answered(make_slack, forgery: str) -> None:
    world, prompt = open_prompt_world(make_slack)
    before = counts(world.svc)
    body = form(
        click(
            prompt.id, "connbot_answer:" + prompt.options[0][0], message_ts=prompt.channel_refs["slack"]["ts"]
        )
    )
    now = int(time.time())
    headers = {
        "wrong secret": signed(body, secret="0" * len(SIGNING_SECRET)),
        "6 minutes old": signed(body, timestamp=now - 360),
        # A request Slack really signed (it verifies) 301 s ago, captured and sent again.
        "replayed after the window": signed(body, timestamp=now - 301),
        "no signature": {"Content-Type": "application/x-www-form-urlencoded"},
        "truncated": {**signed(body), "X-Slack-Signature": signed(body)["X-Slack-Signature"][:20]},
    }[forgery]
    resp = world.web.post("/slack/events", data=body, headers=headers)
    assert resp.status_code == 401
    world.work()
    assert counts(world.svc) == before, "no event stored, no prompt answered, no run started"
    assert world.open_prompt().state == "open"
    assert not world.api.to("chat.update") and not world.api.to("chat.postEphemeral")


def test_the_genuine_slack_click_answers(make_slack) -> None:
    """The control: the same click, signed now, answers the prompt and stores its delivery once."""
    world, prompt = open_prompt_world(make_slack)
    body = form(
        click(
            prompt.id, "connbot_answer:" + prompt.options[0][0], message_ts=prompt.channel_refs["slack"]["ts"]
        )
    )
    headers = signed(body)
    assert world.web.post("/slack/events", data=body, headers=headers).status_code == 200
    assert (
        world.web.post("/slack/events", data=body, headers=headers).status_code == 200
    )  # a replay within the window
    world.work()
    assert counts(world.svc).answered == 1
    assert len(world.api.to("chat.update")) == 1
