"""Slack answers through POST /slack/events: signed clicks resume runs, once, from allowed people."""

from __future__ import annotations

import datetime as dt
import json
import re

from click.testing import CliRunner
from sqlalchemy import select

from bot.cli.main import main
from bot.runs import intake, prompts, sweeper
from bot.state.models import Effect, Prompt, Run
from bot.web.app import create_app
from tests.fakes.adapters import account_not_found, observed, scripted_registry
from tests.fakes.desk import csrf, one_prompt_registry
from tests.fakes.slack_api import CHANNEL, click, form, signed, submission


def human_everywhere():
    return scripted_registry({}, systems=())


def file(world, summary="Alice can't connect"):
    ticket, run_id = intake.file_desk_ticket(world.svc.context, summary, "", "alice@example.com", "1001")
    world.work()
    return ticket, run_id


def run_of(world, run_id):
    with world.svc.store.tx() as s:
        run = s.get(Run, run_id)
        return run.state, run.step, [(r.step, r.outcome, r.answered_by) for r in run.steps], dict(run.facts)


def test_a_prompt_is_posted_once_in_the_levels_channel_with_its_buttons(make_slack):
    world = make_slack(human_everywhere())
    _, _run_id = file(world)
    posts = world.api.to("chat.postMessage")
    assert len(posts) == 1 and posts[0]["channel"] == CHANNEL
    assert world.api.calls[0].token == "xoxb-connbot-test"
    prompt = world.open_prompt()
    buttons = [b for block in posts[0]["blocks"] if block["type"] == "actions" for b in block["elements"]]
    assert {b["value"] for b in buttons} == {prompt.id}
    assert [b["action_id"] for b in buttons][:2] == [
        "connbot_answer:registered",
        "connbot_answer:registering",
    ]
    assert prompt.channel_refs == {"slack": {"channel": CHANNEL, "ts": "1700000000.000001"}}
    # A worker that makes the post effect again (e.g. after a crash) posts nothing new.
    view = prompts.view_of(world.svc.context, prompt.id)
    assert world.svc.channels[0].post(view) is None
    assert len(world.api.to("chat.postMessage")) == 1


def test_a_click_resumes_the_run_and_edits_the_message(make_slack):
    world = make_slack(human_everywhere())
    _, run_id = file(world)
    prompt = world.answer("failed", user="W111")
    state, step, steps, _ = run_of(world, run_id)
    assert steps[0] == ("check_status", "failed", "W111") and step == "force_reconnect" and state == "waiting"
    update = world.api.to("chat.update")[0]
    assert (update["channel"], update["ts"]) == (CHANNEL, prompt.channel_refs["slack"]["ts"])
    assert not [b for b in update["blocks"] if b["type"] == "actions"]
    assert (
        "Answered by <@W111> at 2024-05-06 09:00 UTC: *The app's registration failed*"
        in update["blocks"][-1]["text"]["text"]
    )
    assert len(world.api.to("chat.postMessage")) == 2  # the next step's question


def test_only_a_person_who_answered_in_slack_is_mentioned(make_slack):
    """A desk user may call themselves anything, a Slack user id too: only an answer given in Slack
    names its answerer as a mention; a desk answer names its answerer as text."""
    world = make_slack(human_everywhere())
    file(world)
    world.answer("failed", user="W111")
    second = world.open_prompt()
    answered = world.web.post(
        f"/prompts/{second.id}/answer",
        data={"csrf_token": csrf(world.web, "/prompts"), "answer": "still_failing", "name": "U024BE7LH"},
    )
    assert answered.status_code == 303
    world.work()
    settled = world.api.to("chat.update")[1]
    assert settled["ts"] == second.channel_refs["slack"]["ts"]
    assert (
        "Answered by U024BE7LH at 2024-05-06 09:00 UTC: *The app still fails to register*"
        in settled["blocks"][-1]["text"]["text"]
    )
    assert "<@U024BE7LH>" not in json.dumps(settled)
    # The next question's findings: the Slack answerer mentioned, the desk one by name.
    found = world.api.to("chat.postMessage")[-1]["blocks"][3]["text"]["text"]
    assert "*The app's registration failed* (answered by <@W111>)" in found
    assert "*The app still fails to register* (answered by U024BE7LH)" in found
    # The desk's card of that question: the Slack answerer said to be one, the desk one by name.
    card = world.web.get("/prompts").get_data(as_text=True)
    assert "(answered by W111 in Slack)" in card and "(answered by U024BE7LH)" in card


def test_the_settled_message_says_the_answer_as_the_ticket_does_not_as_its_button(make_slack):
    """The button tells the person what connbot does on their answer; once answered, the message
    says the answer as its outcome reads, in the words of the ticket's comment."""
    world = make_slack(one_prompt_registry())
    _, run_id = file(world)
    prompt = world.answer("connected", user="W111")
    asked = world.api.to("chat.postMessage")[0]  # the one question on the way
    assert "Fixed, the app connects (connbot checks again)" in json.dumps(asked["blocks"])
    settled = next(u for u in world.api.to("chat.update") if u["ts"] == prompt.channel_refs["slack"]["ts"])
    assert settled["blocks"][-1]["text"]["text"] == (
        "✅ Answered by <@W111> at 2024-05-06 09:00 UTC: *Fixed, the app connects*"
    )
    with world.svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, run_id).ticket.comments]
    assert (
        "Fix the configuration by hand: Answered by W111 in Slack at 2024-05-06 09:00 UTC: "
        "Fixed, the app connects" in comments
    )


def test_a_slack_answerer_is_said_to_be_one_on_the_run_page_and_by_runs_show(make_slack, monkeypatch):
    """Who answered a step reads as the ticket names them wherever people read it: a Slack user id
    said to be one, not a bare id."""
    world = make_slack(one_prompt_registry())
    _, run_id = file(world)
    world.answer("connected", user="W111")
    page = world.web.get(f"/runs/{run_id}").get_data(as_text=True)
    row = re.search(r'<tr data-step="fix_config_by_hand">(.*?)</tr>', page, re.S)
    assert row and '<td data-label="By">W111 in Slack</td>' in row.group(1)
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(world.svc.settings.data_dir))
    shown = CliRunner().invoke(main, ["runs", "show", str(run_id)]).output
    assert (
        "[L1] Fix the configuration by hand  -> Fixed, the app connects [connected] "
        "(answered by W111 in Slack)  (" in shown
    )


def test_a_late_answer_on_the_desk_or_the_api_names_the_slack_answerer_as_one(make_slack):
    world = make_slack(one_prompt_registry())
    file(world)
    prompt = world.answer("connected", user="W111")
    late = world.web.post(
        f"/prompts/{prompt.id}/answer",
        data={"csrf_token": csrf(world.web, "/tickets/DESK-1"), "answer": "still_failing", "name": "Dave"},
        follow_redirects=True,
    )
    assert "this question was already answered by W111 in Slack." in late.get_data(as_text=True)
    api = world.web.post(f"/api/prompts/{prompt.id}/answer", json={"answer": "still_failing", "by": "Erin"})
    assert api.status_code == 409 and api.get_json()["message"] == "already answered by W111 in Slack"


def test_a_user_named_in_slack_is_said_on_the_ticket_with_the_slack_user_who_named_them(make_slack):
    world = make_slack(human_everywhere())
    _, run_id = intake.file_desk_ticket(
        world.svc.context, "Someone can't connect", "", "help@x.example", None
    )
    world.work()
    prompt = world.open_prompt()
    assert prompt.kind == "identify"
    assert world.send(submission(prompt.id, "given", "1042", user="W111")).status_code == 200
    world.work()
    with world.svc.store.tx() as s:
        comments = [c.body for c in s.get(Run, run_id).ticket.comments]
    assert "Identify the user: W111 in Slack named the user: 1042." in comments


def test_a_double_click_and_a_retried_delivery_resume_once(make_slack):
    world = make_slack(human_everywhere())
    _, run_id = file(world)
    prompt = world.open_prompt()
    first = click(prompt.id, "connbot_answer:failed", user="W111", action_ts="1.1")
    assert world.send(first).status_code == 200
    assert world.send(first).status_code == 200  # Slack delivers the same click again
    assert (
        world.send(click(prompt.id, "connbot_answer:registered", user="W222", action_ts="1.2")).status_code
        == 200
    )
    world.work()
    _, _, steps, _ = run_of(world, run_id)
    assert steps == [("check_status", "failed", "W111")]
    notes = world.api.to("chat.postEphemeral")
    assert len(notes) == 1 and notes[0]["user"] == "W222" and notes[0]["channel"] == CHANNEL
    assert "already settled" in notes[0]["text"] and "Answered by <@W111>" in notes[0]["text"]
    assert len(world.api.to("chat.update")) == 1


def test_a_user_who_may_not_answer_is_refused_and_nothing_changes(make_slack, slack_api):
    slack_api.groups["S0ONCALL"] = ["W333"]
    world = make_slack(human_everywhere(), answerers_l1="W111", answer_groups_l1="S0ONCALL")
    _, run_id = file(world)
    prompt = world.open_prompt()
    assert (
        world.send(click(prompt.id, "connbot_answer:failed", user="W999", action_ts="2.1")).status_code == 200
    )
    world.work()
    with world.svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).state == "open"
    assert run_of(world, run_id)[2] == []
    note = world.api.to("chat.postEphemeral")[0]
    assert note["user"] == "W999" and "may not answer" in note["text"] and "<@W111>" in note["text"]
    # A member of an answering group may, and the group is looked up once for a while.
    world.answer("failed", user="W333")
    world.answer("still_failing", user="W333")
    assert run_of(world, run_id)[2][:2] == [
        ("check_status", "failed", "W333"),
        ("force_reconnect", "still_failing", "W333"),
    ]
    assert len(world.api.to("usergroups.users.list")) == 1


def test_a_click_is_acknowledged_before_any_slow_work(make_slack, slack_api):
    from concurrent.futures import ThreadPoolExecutor

    slack_api.groups["S0ONCALL"] = ["W333"]
    world = make_slack(human_everywhere(), answer_groups_l1="S0ONCALL")
    _, run_id = file(world)
    channel = world.svc.channels[0]
    channel.executor = ThreadPoolExecutor(max_workers=1)  # as in production: work after the answer
    world.web = create_app(services=world.svc).test_client()
    slack_is_slow = slack_api.hold("usergroups.users.list")
    prompt = world.open_prompt()
    resp = world.send(click(prompt.id, "connbot_answer:failed", user="W333", action_ts="5.1"))
    assert resp.status_code == 200  # answered while the group lookup still hangs
    with world.svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).state == "open"
    slack_is_slow.set()
    channel.executor.shutdown(wait=True)
    world.work()
    assert run_of(world, run_id)[2] == [("check_status", "failed", "W333")]


def test_forged_and_stale_signatures_get_401(make_slack):
    world = make_slack(human_everywhere())
    file(world)
    prompt = world.open_prompt()
    body = form(click(prompt.id, "connbot_answer:failed"))
    forged = world.web.post("/slack/events", data=body, headers=signed(body, secret="not-the-secret"))
    stale = world.web.post(
        "/slack/events", data=body, headers=signed(body, timestamp=int(dt.datetime.now().timestamp()) - 360)
    )
    unsigned = world.web.post(
        "/slack/events", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    world.work()
    with world.svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).state == "open"


def test_more_detail_opens_a_modal_whose_text_reaches_the_run(make_slack):
    world = make_slack(human_everywhere())
    _, run_id = file(world)
    world.answer("failed")
    world.answer("still_failing")
    prompt = world.open_prompt()
    assert prompt.step == "record_error"
    assert world.send(click(prompt.id, "connbot_detail", action_ts="3.1")).status_code == 200
    modal = world.api.to("views.open")[0]
    assert modal["trigger_id"] == "111.222.valid" and modal["view"]["private_metadata"] == prompt.id
    assert modal["view"]["blocks"][2]["label"]["text"].startswith("The exact error message")
    resp = world.send(submission(prompt.id, "found", "SIP/2.0 403 Forbidden (bad auth)"))
    assert resp.status_code == 200 and resp.get_data(as_text=True) == ""  # the modal closes
    world.work()
    _, step, steps, facts = run_of(world, run_id)
    assert steps[-1] == ("record_error", "found", "W111")
    assert facts["error_message"] == "SIP/2.0 403 Forbidden (bad auth)" and step == "check_config"
    with world.svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).answer_text == "SIP/2.0 403 Forbidden (bad auth)"


# the account looks missing while the PBX and its database answer: creating it is offered
MISSING = {
    "pbx.get_account": [account_not_found()],
    "pbx.check_database": [observed("db_ok", realtime_db="ok")],
}


def test_an_approval_names_the_tickets_user_as_text_and_no_pbx_where_the_run_has_none(make_slack):
    """The user comes from the ticket: shown, never a mention or a link; with no PBX directory the
    run has no PBX instance, and none is named."""
    world = make_slack(scripted_registry(MISSING, systems=("pbx",)))
    intake.file_desk_ticket(world.svc.context, "Alice can't connect", "", "alice@example.com", "<!here> 1001")
    world.work()
    for choice in ("failed", "still_failing", "none", "ok"):
        world.answer(choice)
    assert world.open_prompt().kind == "approval"
    blocks = world.api.to("chat.postMessage")[-1]["blocks"]
    said = "If you approve, connbot will do this for the account of {} 1001: Create auth 1001, aor 1001"
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]  # mrkdwn
    assert said.format("&lt;!here&gt;") in sections[1] and not any("<!here>" in t for t in sections)
    approve = next(b for b in blocks[-2]["elements"] if b["action_id"] == "connbot_answer:approve")
    confirm = approve["confirm"]["text"]  # plain text: Slack shows it as it is
    assert confirm["type"] == "plain_text" and confirm["text"].startswith(said.format("<!here>"))
    assert " on PBX" not in sections[1]


def test_approvals_need_a_listed_approver_and_say_what_will_change(make_slack):
    world = make_slack(
        scripted_registry({**MISSING, "pbx.create_account": ["created"]}, systems=("pbx",)),
        answerers_l1="W111",
    )
    _, run_id = file(world)
    for choice in ("failed", "still_failing", "none", "ok"):
        world.answer(choice)
    prompt = world.open_prompt()
    assert prompt.kind == "approval"
    text = json.dumps(world.api.to("chat.postMessage")[-1]["blocks"])
    assert (
        "Approval needed" in text and "If you approve, connbot will do this for the account of 1001: " in text
    )
    world.answer("approve", user="W222")
    assert world.open_prompt().id == prompt.id  # refused
    world.answer("approve", user="W111")
    # the approval's message says it as the ticket does: approved, not the button's "Approve"
    settled = next(u for u in world.api.to("chat.update") if u["ts"] == prompt.channel_refs["slack"]["ts"])
    assert settled["blocks"][-1]["text"]["text"].endswith(": *Approved*")
    world.answer("registered", user="W111")  # no app adapter here: a person checks the fix
    state, _, steps, _ = run_of(world, run_id)
    assert steps[-4:] == [
        ("create_account", "approved", "W111"),
        ("create_account", "created", None),
        ("recheck_account", "registered", "W111"),
        ("close_account_fixed", "closed", None),
    ]
    assert state == "ended"


def test_a_fix_rejected_in_slack_is_said_with_who_rejected_it_as_a_slack_user(make_slack):
    """The next question states the cause with the rejection of its fix, naming the Slack user id as
    one (a ticket cannot resolve it), not proposing the fix again."""
    world = make_slack(scripted_registry(MISSING, systems=("pbx",)), answerers_l1="W111")
    file(world)
    for choice in ("failed", "still_failing", "none", "ok"):
        world.answer(choice)
    assert world.open_prompt().kind == "approval"
    world.answer("reject", user="W111")
    question = world.open_prompt().question
    assert (
        "Its fix, “Create the user's account, or what it lacks”, was put for approval and rejected by "
        "W111 in Slack." in question
    )


def test_no_one_may_approve_when_no_approvers_are_listed(make_slack):
    world = make_slack(scripted_registry(MISSING, systems=("pbx",)))
    file(world)
    for choice in ("failed", "still_failing", "none", "ok"):
        world.answer(choice)
    world.answer("approve")
    assert world.open_prompt().kind == "approval"
    assert "may not approve" in world.api.to("chat.postEphemeral")[-1]["text"]


def test_reminder_in_the_thread_then_the_timeout_edge(make_slack):

    world = make_slack(human_everywhere())
    _, run_id = file(world)
    prompt = world.open_prompt()
    world.now[0] += dt.timedelta(hours=2, seconds=1)  # half of the playbook's 4 h
    assert sweeper.sweep(world.svc.context)["reminded"] == 1
    world.work()
    reminder = world.api.to("chat.postMessage")[-1]
    assert (
        reminder["thread_ts"] == prompt.channel_refs["slack"]["ts"]
        and "<!subteam^S0LEVEL1>" in reminder["text"]
    )
    world.now[0] += dt.timedelta(hours=2)
    assert sweeper.sweep(world.svc.context)["expired"] == 1
    world.work()
    _, step, steps, _ = run_of(world, run_id)
    assert steps[0][:2] == ("check_status", "timed_out") and step == "force_reconnect"
    assert "No answer in time" in world.api.to("chat.update")[-1]["blocks"][-1]["text"]["text"]
    # A click on the timed-out prompt changes nothing and says so.
    world.send(click(prompt.id, "connbot_answer:failed", action_ts="4.1"))
    assert "No answer in time" in world.api.to("chat.postEphemeral")[-1]["text"]
    assert len(run_of(world, run_id)[2]) == 1


def test_a_slack_429_is_retried_after_retry_after(make_slack, slack_api):
    slack_api.fail_next("chat.postMessage", 429, {"Retry-After": "0"})
    world = make_slack(human_everywhere())
    file(world)
    assert [c.method for c in slack_api.calls] == ["chat.postMessage", "chat.postMessage"]
    assert world.open_prompt().channel_refs["slack"]["ts"]


def test_a_slack_outage_leaves_the_post_pending_for_a_later_retry(make_slack, slack_api):
    for _ in range(3):
        slack_api.fail_next("chat.postMessage", 503, {}, {"ok": False, "error": "service_unavailable"})
    world = make_slack(human_everywhere())
    file(world)
    with world.svc.store.tx() as s:
        effect = s.scalars(select(Effect).where(Effect.kind == "prompt.post")).one()
        assert effect.state == "pending" and "service_unavailable" in effect.error
    assert world.open_prompt().channel_refs == {}
