"""Runs through the real engine, store and queue, with scripted adapters answering."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, text

from bot.runs import intake, operate, outbox, prompts, sweeper
from bot.runs.prompts import Via
from bot.runs.steps import advance, start_run
from bot.state.models import Comment, Effect, Prompt, Run, Ticket
from integrations.base import (
    ActionResult,
    NotConfiguredError,
    PermanentError,
    TransientError,
    UnsupportedError,
)
from tests.fakes.adapters import account_not_found, observed, scripted_registry

L1_TO_ACCOUNT = {
    "app.get_status": ["failed"],
    "app.reconnect": ["still_failing"],
    "app.get_last_error": ["found"],
    "app.check_config": ["ok"],
}
# the account looks missing while the PBX and its database answer: creating it is safe
MISSING = {
    "pbx.get_account": [account_not_found(user_known_app=True)],
    "pbx.check_database": [observed("db_ok", realtime_db="ok")],
}
L2_PASSING = {
    "net.check_path": ["ok"],
    "app.test_network": ["ok"],
    "pbx.health": ["up"],
    "pbx.check_database": ["db_ok"],
}


def file(svc, summary="Alice can't connect"):
    ticket, run_id = intake.file_desk_ticket(svc.context, summary, "", "alice@example.com", "1001")
    svc.queue.run_pending()
    return ticket, run_id


def load(svc, run_id):
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        steps = [(r.step, r.outcome) for r in run.steps]
        comments = [c.body for c in run.ticket.comments]
        return run, steps, comments, run.ticket


def open_prompt(svc, run_id):
    with svc.store.tx() as s:
        return s.scalars(select(Prompt).where(Prompt.run_id == run_id, Prompt.state == "open")).one()


def answer(svc, prompt_id, choice, text=None, who="bob"):
    with svc.store.tx() as s:
        result = prompts.answer_prompt(svc.context, s, prompt_id, choice, text, who, Via.DESK)
    svc.queue.run_pending()
    return result.won


def test_a_fixed_ticket_is_closed_with_the_reason_and_the_steps(make_services):
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    ticket, run_id = file(svc)
    run, steps, comments, t = load(svc, run_id)
    assert run.state == "ended" and run.end_kind == "close"
    assert steps == [
        ("check_status", "failed"),
        ("force_reconnect", "reconnected"),
        ("close_transient", "closed"),
    ]
    assert t.status == "closed" and t.key == ticket.key
    assert comments[0].startswith("connbot is triaging this ticket")
    assert "temporary network problem" in comments[-1] and "Force a manual reconnection" in comments[-1]


def test_states_and_effect_payloads_are_stored_as_the_plain_values_they_always_were(make_services):
    """Rows written before the states became enums read the same, and the rows written now are
    what other readers of the database (reports, older processes during a deploy) expect."""
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    _, run_id = file(svc)
    with svc.store.tx() as s:
        assert (
            s.execute(text("SELECT state FROM runs WHERE id = :id"), {"id": run_id}).scalar_one() == "ended"
        )
        effects = s.execute(text("SELECT kind, state, payload FROM effects ORDER BY id")).all()
    assert {(kind, state) for kind, state, _ in effects} == {("comment", "done"), ("close", "done")}
    close = json.loads(effects[-1][2]) if isinstance(effects[-1][2], str) else effects[-1][2]
    assert set(close) == {"ticket_id", "note"} and close["note"]["heading"].startswith("Closed:")


def test_without_adapters_every_step_asks_a_person_and_the_answer_moves_the_run(make_services):
    svc = make_services(registry=scripted_registry({}, systems=()))
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    assert prompt.step == "check_status" and next(v for v, _ in prompt.options) == "registered"
    assert "no adapter is configured for app.get_status" in load(svc, run_id)[2][-1]
    assert answer(svc, prompt.id, "failed")
    prompt = open_prompt(svc, run_id)
    assert prompt.step == "force_reconnect"
    assert answer(svc, prompt.id, "reconnected", who="carol")
    run, steps, comments, t = load(svc, run_id)
    assert run.end_kind == "close" and t.status == "closed"
    assert steps[:2] == [("check_status", "failed"), ("force_reconnect", "reconnected")]
    assert any("Answered by carol on the desk" in c and "The app reconnected" in c for c in comments)


def test_the_first_answer_wins_and_later_ones_change_nothing(make_services):
    svc = make_services(registry=scripted_registry({}, systems=()))
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    assert answer(svc, prompt.id, "failed", who="bob")
    assert not answer(svc, prompt.id, "registered", who="eve")
    _run, steps, _, _ = load(svc, run_id)
    assert steps == [("check_status", "failed")]
    with svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).answered_by == "bob"


def test_a_collected_answer_text_reaches_later_steps(make_services):
    svc = make_services(
        registry=scripted_registry(
            {
                "app.get_status": ["failed"],
                "app.reconnect": ["still_failing"],
                "app.get_last_error": [UnsupportedError("the app cannot report its last error")],
                "app.check_config": ["ok"],
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": ["match"],
            },
            systems=("app", "pbx"),
        )
    )
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    assert prompt.step == "record_error" and prompt.text_label.startswith("The exact error message")
    assert answer(svc, prompt.id, "found", text="403 Forbidden")
    calls = dict(svc.registry.adapters["pbx"].calls)
    assert calls["pbx.get_account"].facts["error_message"] == "403 Forbidden"


def test_an_adapter_error_follows_the_failure_edge_with_the_reason(make_services):
    svc = make_services(
        registry=scripted_registry(
            {
                "app.get_status": [PermanentError("HTTP 404 from GET /v1/users/1001/devices")],
                "app.reconnect": ["reconnected"],
            }
        )
    )
    _, run_id = file(svc)
    run, steps, comments, _ = load(svc, run_id)
    assert steps[0] == ("check_status", "error")
    with svc.store.tx() as s:
        assert "HTTP 404" in s.get(Run, run_id).steps[0].summary
    assert run.end_kind == "close"
    assert "- [L1] Check the client's connection status: Failed (HTTP 404" in comments[-1]


def test_an_outside_systems_long_words_are_stored_cut_in_evidence_and_summaries(make_services):
    """A backend that answers with 200,000 characters (an error text, a reported message) does not
    put them in the run's record: an error's text is cut to 1,000, any evidence text to 2,000."""
    huge = "x" * 200_000
    svc = make_services(
        registry=scripted_registry(
            {
                "app.get_status": [PermanentError(f"HTTP 404 from GET /v1/devices: {huge}")],
                "app.reconnect": [
                    ActionResult(outcome="reconnected", summary="ok", evidence={"log": [huge]})
                ],
            }
        )
    )
    _, run_id = file(svc)
    with svc.store.tx() as s:
        first, second = s.get(Run, run_id).steps[:2]
        assert first.outcome == "error" and first.summary.startswith("HTTP 404 from")
        assert len(first.summary) < 1100 and len(first.evidence["error"]) == 1000
        assert first.evidence["error"].endswith("x…")
        assert second.outcome == "reconnected" and len(second.evidence["log"][0]) == 2000


def test_an_account_change_waits_for_approval_and_a_rejection_takes_the_rejected_edge(make_services):
    svc = make_services(registry=scripted_registry({**L1_TO_ACCOUNT, **MISSING}, systems=("app", "pbx")))
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    assert prompt.kind == "approval" and prompt.step == "create_account"
    assert prompt.question.startswith(
        "If you approve, connbot will do this for the account of 1001: Create auth 1001, aor 1001, endpoint "
        "1001 on the PrivateServer (what connbot did not find of the user's account)."
    )
    assert "pbx.create_account" not in prompt.question  # plain words, not the action's name
    assert (
        "If you reject, nothing is changed and the ticket goes on to “Create the account" in prompt.question
    )
    assert answer(svc, prompt.id, "reject", who="lead")
    prompt = open_prompt(svc, run_id)
    assert prompt.step == "fix_account_by_hand"
    _, steps, comments, _ = load(svc, run_id)
    assert ("create_account", "rejected") in steps
    # The ticket reads the decision and the refusal in words: where the run went, who refused.
    approval = next(c for c in comments if c.startswith("Approval needed:"))
    asked = next(c for c in comments if c.startswith("Question for a person:"))
    decided = (
        "- [L1] Decide whether the account can be changed: Create the user's account, or what it lacks ("
    )
    assert decided in approval and ": route 1" not in approval
    assert "- [L1] Create the user's account, or what it lacks: Rejected (answered by lead)\n" in asked
    assert ": rejected" not in asked
    # nobody fixes it by hand: the hand-over says the creation was rejected, and does not propose it
    assert answer(svc, prompt.id, "not_resolved")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    assert (
        "Leading cause: The user's account is missing on the PBX (70%). The PBX has no account for the "
        "user: the PBX has no endpoint for the user; the app backend knows the user. Its fix, “Create the "
        "user's account, or what it lacks”, was put for approval and rejected by lead."
    ) in handover
    assert "Create the account (auth, AOR, endpoint)" not in handover


def test_a_rerun_from_a_step_is_told_of_the_rejection_until_the_fix_is_approved(make_services):
    """The reset was rejected, the ticket re-run from the comparison (with the run's findings): the
    new approval says the reset was rejected before; approved now and tried, the re-run's hand-over
    says so, no longer that it was rejected."""
    mismatch = observed("password_mismatch", credentials="password_mismatch")
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [mismatch, mismatch],
                "pbx.reset_password": ["updated_still_failing"],
            },
            systems=("app", "pbx"),
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "reject", who="lead")
    assert "rejected by lead" in load(svc, run_id)[2][-2]  # the hand-over, before level 2's question
    again = operate.rerun(svc.context, run_id, operate.Actor("carol", Via.API), "compare_password").run_id
    svc.queue.run_pending()
    approval = open_prompt(svc, again)
    assert "was put for approval and rejected by lead." in approval.question
    assert answer(svc, approval.id, "approve", who="carol")
    handover = [c for c in load(svc, again)[2] if c.startswith("Level 1 checks done")][-1]
    said = "Changed, but the app still fails to register"
    assert f"Change the password so the app and the PrivateServer agree: {said}" in handover
    assert (
        "Its fix, “Change the password so the app and the PrivateServer agree”, was approved by carol and "
        "tried: pbx.reset_password found updated_still_failing."
    ) in handover
    assert "rejected" not in handover


# What the PBX adapter says of a reset it made that did not end the problem (comparing the
# credentials again, which differ still), or could not make.
RESET_DID_NOT_FIX = {
    "updated_still_failing": "Set a new password for 1001 on the PBX and in the app, but the app still "
    "does not register. Compared again: The app's password for 1001 differs from the PBX's (HA1 digests "
    "differ).",
    "forbidden": "The PBX refused the password change (403: connbot's ARI user is read-only); nothing "
    "was changed.",
}


@pytest.mark.parametrize("outcome", RESET_DID_NOT_FIX)
def test_a_hand_over_says_what_came_of_an_approved_reset_instead_of_proposing_it(make_services, outcome):
    """The reset was approved and made (or refused by the PBX), and the app still fails: the hand-over
    to level 2 and level 2's question state the mismatch with what came of its fix, in the
    adapter's words, not the fix as if it had not been tried."""
    said = RESET_DID_NOT_FIX[outcome]
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [observed("password_mismatch", credentials="password_mismatch")],
                "pbx.reset_password": [ActionResult(outcome=outcome, summary=said)],
                **L2_PASSING,
            },
            systems=("app", "pbx", "net"),
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="Carol")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    logs = open_prompt(svc, run_id)  # level 2: no adapter reads the client logs
    tried = (
        "Its fix, “Change the password so the app and the PrivateServer agree”, was approved by Carol "
        f"and tried: {said}"
    )
    assert (
        "Leading cause: The app's password (or user name) differs from the PBX's (90%). The app's "
        f"credentials do not match the PBX's: the HA1 digests differ. {tried}"
    ) in handover
    assert (
        f"connbot's diagnosis: The app's credentials do not match the PBX's: the HA1 digests differ. {tried}"
        in (logs.question)
    )
    for shown in (handover, logs.question):
        assert "Set a new password on the PBX and in the app, with approval" not in shown


def test_a_reset_after_which_the_credentials_match_hands_over_no_mismatch(make_services):
    """The approved reset made the passwords agree (the adapter compared them again) but the app still
    fails: level 2 is not told that the HA1 digests differ as the leading cause; the mismatch is an
    earlier cause, with its fix and what came of it."""
    said = (
        "Set a new password for 1001 on the PBX and in the app, but the app still does not register. "
        "Compared again: The app's username, realm and password for 1001 match the PBX's."
    )
    reset = ActionResult(outcome="updated_still_failing", summary=said, facts={"credentials": "match"})
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [observed("password_mismatch", credentials="password_mismatch")],
                "pbx.reset_password": [reset],
                **L2_PASSING,
            },
            systems=("app", "pbx", "net"),
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="Carol")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    assert "Leading cause: The app's password" not in handover
    assert (
        "Earlier leading cause: The app's password (or user name) differs from the PBX's. Its fix, “Change "
        f"the password so the app and the PrivateServer agree”, was approved by Carol and tried: {said}"
    ) in handover


def test_an_approval_nobody_answered_is_said_instead_of_proposing_its_fix_again(make_services):
    """Nobody answered the reset's approval in time: its row says where the run went, and the hand-over
    to level 2 and level 2's question say that the reset was put for approval and got no answer."""
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [observed("password_mismatch", credentials="password_mismatch")],
                **L2_PASSING,
            },
            systems=("app", "pbx", "net"),
        )
    )
    now = [dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)]
    svc.context.clock = lambda: now[0]
    _, run_id = file(svc)
    assert open_prompt(svc, run_id).kind == "approval"
    now[0] += dt.timedelta(hours=4, seconds=1)
    assert sweeper.sweep(svc.context)["expired"] == 1
    svc.queue.run_pending()
    comments = load(svc, run_id)[2]
    assert (
        "Change the password so the app and the PrivateServer agree: No answer within 4 h: on to “Escalate "
        "to the second level”."
    ) in comments
    handover = next(c for c in comments if c.startswith("Level 1 checks done"))
    unanswered = (
        "The app's credentials do not match the PBX's: the HA1 digests differ. Its fix, “Change the password "
        "so the app and the PrivateServer agree”, was put for approval; no one answered within 4 h."
    )
    assert unanswered in handover and unanswered in open_prompt(svc, run_id).question
    assert "Set a new password on the PBX and in the app, with approval" not in handover


def test_an_approved_reset_a_person_made_by_hand_is_said_with_their_answer(make_services):
    """connbot cannot set the app's password after all (no app backend): a person makes the approved
    reset and says it still fails; the hand-over says so in the answer's words."""
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [observed("password_mismatch", credentials="password_mismatch")],
                "pbx.reset_password": [NotConfiguredError("pbx.reset_password needs the app backend")],
            },
            systems=("app", "pbx"),
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="Carol")
    by_hand = open_prompt(svc, run_id)
    assert by_hand.step == "reset_password" and by_hand.kind == "question"
    assert answer(svc, by_hand.id, "updated_still_failing", who="Dave")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    assert (
        "Its fix, “Change the password so the app and the PrivateServer agree”, was approved by Carol and "
        "tried: Dave answered: Changed, but the app still fails to register."
    ) in handover


def test_a_hand_over_says_an_approved_account_creation_was_refused(make_services):
    """The PBX refused to write the approved account and nobody creates it by hand: the hand-over
    says so instead of proposing to create it."""
    refused = ActionResult(
        outcome="forbidden_readonly_backend",
        summary="Cannot create account 1001: the PBX refused to write its auth (403: a read-only backend "
        "such as pjsip.conf, or a database that refuses writes); do it by hand once the PBX accepts writes.",
        facts={"config_writable": False},
    )
    svc = make_services(
        registry=scripted_registry({**L1_TO_ACCOUNT, **MISSING, "pbx.create_account": [refused]})
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="lead")
    by_hand = open_prompt(svc, run_id)
    assert by_hand.step == "fix_account_by_hand"
    assert answer(svc, by_hand.id, "not_resolved")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    assert (
        "Its fix, “Create the user's account, or what it lacks”, was approved by lead and tried: Cannot "
        "create account 1001: the PBX refused to write its auth"
    ) in handover
    assert "Create the account (auth, AOR, endpoint)" not in handover


def test_a_hand_over_pointing_at_no_single_cause_still_says_the_fix_tried(make_services):
    """connbot created the missing account with approval and the app still fails: the account exists
    now, so no cause leads, but the hand-over still says that the creation was approved and made."""
    created = ActionResult(
        outcome="created",
        summary="Created account 1001 on the PBX (auth, AOR, endpoint; context from-internal).",
        facts={"account": "exists"},
    )
    svc = make_services(
        registry=scripted_registry(
            {**L1_TO_ACCOUNT, **MISSING, "pbx.create_account": [created], "app.recheck": ["still_failing"]}
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="lead")
    assert answer(svc, open_prompt(svc, run_id).id, "not_resolved")
    handover = next(c for c in load(svc, run_id)[2] if c.startswith("Level 1 checks done"))
    assert (
        "The findings point at no single cause.\n\nEarlier leading cause: The user's account is missing on "
        "the PBX. Its fix, “Create the user's account, or what it lacks”, was approved by lead and tried: "
        "Created account 1001 on the PBX (auth, AOR, endpoint; context from-internal)."
    ) in handover


def test_an_approval_shows_a_long_user_cut_so_that_its_start_still_says_what_changes(make_services):
    svc = make_services(registry=scripted_registry({**L1_TO_ACCOUNT, **MISSING}))
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "alice@example.com", "9" * 255)
    svc.queue.run_pending()
    with svc.store.tx() as s:
        question = s.scalars(select(Prompt).where(Prompt.kind == "approval")).one().question
    start = f"If you approve, connbot will do this for the account of {'9' * 63}…: Create auth"
    assert question.startswith(start) and len(start) < 200  # what a confirm dialog's 300 characters keep


def test_an_approved_account_change_runs_the_action(make_services):
    svc = make_services(
        registry=scripted_registry(
            {**L1_TO_ACCOUNT, **MISSING, "pbx.create_account": ["created"], "app.recheck": ["registered"]}
        )
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "approve", who="lead")
    run, steps, comments, _ = load(svc, run_id)
    assert ("create_account", "approved") in steps and ("create_account", "created") in steps
    assert steps[-2:] == [("recheck_account", "registered"), ("close_account_fixed", "closed")]
    assert run.end_kind == "close"
    closed = next(c for c in comments if c.startswith("Closed:"))
    assert "- [L1] Create the user's account, or what it lacks: Approved (answered by lead)\n" in closed
    assert "- [L1] Create the user's account, or what it lacks: Created (" in closed
    assert "- [L1] Check the account fix: The app registers now (" in closed
    assert closed.endswith("- [L1] Close - account created or mismatch resolved: Ticket closed")


def test_escalation_hands_the_ticket_to_level_2_with_evidence_and_goes_on(make_services):
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": ["match"],
                **L2_PASSING,
                "logs.classify": ["none_found"],
            }
        )
    )
    _, run_id = file(svc)
    run, _steps, comments, ticket = load(svc, run_id)
    assert run.end_kind == "escalate" and run.end_level == 3
    assert ticket.level == 3 and ticket.queue == "Level 3" and ticket.status == "open"
    packet = next(c for c in comments if c.startswith("Level 1 checks done: escalated to level 2"))
    assert "Look for a password mismatch: The settings match" in packet
    assert "Escalate to the second level: Escalated to level 2" in packet
    assert (
        comments[-1].startswith("Escalated to level 3")
        and "Check the network: The path is fine" in comments[-1]
    )
    assert "Escalate to the third level: Escalated to level 3" in comments[-1]
    assert "Escalated to level 2 (Escalated to level 2)" not in packet  # said once
    assert ": match" not in packet and ": escalated_l" not in packet + comments[-1]


def test_an_unanswered_prompt_is_reminded_then_times_out_along_the_timeout_edge(make_services):
    svc = make_services(
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["incomplete"],
                **L2_PASSING,
                "pbx.check_database": ["db_ok", "db_ok"],  # before changing the account, and on level 2
                "logs.classify": ["none_found"],
            }
        )
    )
    now = [dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)]
    svc.context.clock = lambda: now[0]
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    assert prompt.step == "fix_account_by_hand"
    now[0] += dt.timedelta(hours=1)
    assert sweeper.sweep(svc.context)["reminded"] == 0
    now[0] += dt.timedelta(hours=1, seconds=1)
    assert sweeper.sweep(svc.context)["reminded"] == 1
    assert sweeper.sweep(svc.context)["reminded"] == 0
    now[0] += dt.timedelta(hours=2)
    assert sweeper.sweep(svc.context)["expired"] == 1
    svc.queue.run_pending()
    run, steps, comments, _ = load(svc, run_id)
    assert ("fix_account_by_hand", "timed_out") in steps and run.end_level == 3
    assert any("No answer within 4 h" in c for c in comments)
    assert "- [L1] Create the account or resolve the mismatch by hand: No answer in time (" in comments[-1]
    assert not answer(svc, prompt.id, "resolved")


def test_effects_are_made_once_even_when_flushed_again(make_services):
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    _, run_id = file(svc)
    with svc.store.tx() as s:
        for effect in s.scalars(select(Effect)):
            effect.state = "pending"  # as if the worker died after making them, before recording it
    outbox.flush_effects(svc.context, run_id)
    with svc.store.tx() as s:
        assert s.scalar(select(Comment).where(Comment.body.like("Closed:%")).limit(1)) is not None
        bodies = [c.body for c in s.scalars(select(Comment))]
    assert len(bodies) == len(set(bodies)) == 2


def test_a_run_held_by_another_worker_is_left_alone_until_its_lease_expires(make_services, settings):
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    with svc.store.tx() as s:
        ticket = Ticket(source="desk", key="DESK-9", summary="x", user_ref="1001", matched=True)
        s.add(ticket)
        s.flush()
        run = start_run(svc.context, s, ticket)
        run_id = run.id
    assert svc.store.acquire(run_id, "other-worker", 60)
    assert advance(svc.context, run_id, "me") is False
    assert load(svc, run_id)[1] == []
    with svc.store.tx() as s:
        s.get(Run, run_id).lease_until = svc.context.clock() - dt.timedelta(seconds=1)
    assert advance(svc.context, run_id, "me") is True
    assert load(svc, run_id)[2][0].startswith("connbot is triaging"), "the expired lease was taken over"
    svc.queue.run_pending()  # its later steps, a work item each
    assert load(svc, run_id)[0].state == "ended"


def test_an_answer_whose_wake_up_was_lost_is_picked_up_by_the_sweep(make_services, settings):
    """A worker killed while advancing the run an answer woke: the run still waits, its prompt is answered."""
    # The sweep's grace period is longer than filing takes even on a busy machine; the clock then jumps.
    svc = make_services(
        settings=settings.model_copy(update={"sweep_seconds": 30}), registry=scripted_registry({}, systems=())
    )
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    with svc.store.tx() as s:
        assert prompts.answer_prompt(
            svc.context, s, prompt.id, prompt.options[0][0], None, "bob", Via.DESK
        ).won
    svc.queue.huey.flush()  # the wake-up is lost
    assert sweeper.sweep(svc.context)["resumed"] == 0, "a run is left to its own wake-up for sweep_seconds"
    later = svc.context.clock() + dt.timedelta(seconds=svc.settings.sweep_seconds + 1)
    svc.context.clock = lambda: later
    assert sweeper.sweep(svc.context)["resumed"] == 1
    svc.queue.run_pending()
    assert load(svc, run_id)[1][0] == (prompt.step, prompt.options[0][0]), "the answer moved the run"


def test_one_run_per_ticket(make_services):
    svc = make_services(registry=scripted_registry({}, systems=()))
    _, run_id = file(svc)
    with svc.store.tx() as s:
        ticket = s.get(Run, run_id).ticket
        assert start_run(svc.context, s, ticket) is None
        assert len(ticket.runs) == 1


def test_prompts_approvals_and_escalation_work_the_same_on_every_backend(backend_settings, make_services):
    svc = make_services(
        settings=backend_settings,
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": ["exists"],
                "pbx.compare_credentials": [observed("password_mismatch", credentials="password_mismatch")],
                "pbx.reset_password": ["updated_still_failing"],
                **L2_PASSING,
                "logs.classify": [observed("max_contacts", log_class="max_contacts")],
                "app.recheck": ["registered"],
            }
        ),
    )
    _, run_id = file(svc)
    approval = open_prompt(svc, run_id)
    assert approval.kind == "approval" and approval.step == "reset_password"
    assert answer(svc, approval.id, "approve", who="lead")
    human = open_prompt(svc, run_id)
    assert human.step == "act_on_logs" and human.level == 2
    # the question's comment shows what this level's checks found (the logs' class among them);
    # the first level's rows are on the ticket already, in the escalation's comment
    asked = [c for c in load(svc, run_id)[2] if "Act on what the client logs show" in c]
    assert len(asked) == 1 and "Go down into the client logs" in asked[0] and "max_contacts" in asked[0]
    assert "Check the network" in asked[0] and "Check the client's connection status" not in asked[0]
    # the first level's approver was asked about the password; the second level is told the diagnosis
    assert "connbot's diagnosis: The app's credentials do not match the PBX's" in asked[0]
    assert answer(svc, human.id, "fixed", who="l2-agent")
    run, steps, comments, ticket = load(svc, run_id)
    assert run.end_kind == "close" and ticket.status == "closed" and ticket.level == 2
    assert [s for s, _ in steps][-5:] == [
        "read_client_logs",
        "diagnose_logs",
        "act_on_logs",
        "recheck_l2",
        "close_l2_fixed",
    ]
    assert len(comments) == len(set(comments))


def test_a_ticket_without_its_user_finds_it_by_the_reporters_email(make_services):
    found = ActionResult(
        outcome="found",
        summary="The app backend knows alice@example.com as user 1001.",
        facts={"user": "1001"},
    )
    svc = make_services(
        registry=scripted_registry(
            {"app.find_user": [found], "app.get_status": ["failed"], "app.reconnect": ["reconnected"]}
        )
    )
    _, run_id = intake.file_desk_ticket(svc.context, "Alice can't connect", "", "alice@example.com", None)
    svc.queue.run_pending()
    run, steps, comments, ticket = load(svc, run_id)
    assert ticket.user_ref == "1001" and steps[0] == ("identify_user", "found") and run.end_kind == "close"
    assert "- [L1] Identify the user: Found by the reporter's e-mail (" in comments[-1]
    assert svc.registry.adapters["app"].calls[1][1].user == "1001"


def test_a_person_names_the_user_when_nobody_else_can(make_services):
    svc = make_services(
        registry=scripted_registry(
            {"app.find_user": ["not_found"], "app.get_status": ["failed"], "app.reconnect": ["reconnected"]},
            systems=("app",),
        )
    )
    _, run_id = intake.file_desk_ticket(svc.context, "Someone can't connect", "", "help@example.com", None)
    svc.queue.run_pending()
    prompt = open_prompt(svc, run_id)
    assert prompt.kind == "identify" and prompt.text_label == "The user's extension or SIP username"
    assert "does not know the reporter's e-mail" in load(svc, run_id)[2][-1]
    assert answer(svc, prompt.id, "given", text=" 1042 \n")
    run, steps, comments, ticket = load(svc, run_id)
    assert ticket.user_ref == "1042" and steps[1] == ("identify_user", "given") and run.end_kind == "close"
    closed = comments[-1]
    assert "- [L1] Identify the user: Not found by the reporter's e-mail (" in closed
    assert "- [L1] Identify the user: A person named the user (answered by bob: 1042)\n" in closed
    assert [call[1].user for call in svc.registry.adapters["app"].calls[1:]] == ["1042", "1042"]


def test_when_nobody_knows_the_user_the_playbook_runs_anyway_and_asks_once(make_services):
    svc = make_services(registry=scripted_registry({}, systems=()))
    _, run_id = intake.file_desk_ticket(svc.context, "Someone can't connect", "", "", None)
    svc.queue.run_pending()
    prompt = open_prompt(svc, run_id)
    assert prompt.kind == "identify"
    assert "the ticket names no user and no reporter e-mail" in load(svc, run_id)[2][-1]
    assert answer(svc, prompt.id, "unknown")
    assert open_prompt(svc, run_id).step == "check_status"
    assert answer(svc, open_prompt(svc, run_id).id, "registered")
    assert open_prompt(svc, run_id).step == "force_reconnect"


def test_a_step_whose_system_keeps_failing_is_retried_later_then_takes_its_failure_edge(make_services):
    svc = make_services(
        registry=scripted_registry(
            {
                "app.get_status": [TransientError("HTTP 503"), "failed"],
                "app.reconnect": [TransientError("HTTP 502")] * 3,
                "app.get_last_error": [UnsupportedError("no last error")],
            },
            systems=("app",),
        )
    )
    now = [dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)]
    svc.context.clock = lambda: now[0]
    _, run_id = file(svc)

    def attempts():
        with svc.store.tx() as s:
            run = s.get(Run, run_id)
            return run.attempts, [(r.step, r.outcome) for r in run.steps]

    def work() -> None:  # the retry the runner scheduled, now; then whatever it queued
        advance(svc.context, run_id, "me")
        svc.queue.run_pending()

    assert attempts() == (1, []), "the failed attempt is not a result: the step is tried again later"
    work()
    assert attempts() == (1, []), "not before its time"
    now[0] += dt.timedelta(seconds=2)
    work()
    assert attempts() == (1, [("check_status", "failed")]), (
        "the second attempt got through; the next step failed once"
    )
    for wait in (2, 4):
        now[0] += dt.timedelta(seconds=wait)
        work()
    tries, steps = attempts()
    assert tries == 0 and steps == [("check_status", "failed"), ("force_reconnect", "error")]
    with svc.store.tx() as s:
        assert s.get(Run, run_id).steps[1].summary == "HTTP 502; tried 3 times."
    assert open_prompt(svc, run_id).step == "record_error", "the failure edge was taken"


def test_findings_accumulate_even_from_a_failed_step_and_the_question_carries_the_diagnosis(
    make_services, settings
):
    """Asterisk stopped: the account look-up fails with ARI refused; the run keeps that finding, the
    network probe adds SIP refused, and the question a person gets names the cause with both."""
    refused = PermanentError("connection refused by http://pbx1:8088/ari/...").found(
        pbx="pbx1", ari="refused"
    )
    svc = make_services(
        settings=settings.model_copy(update={"incidents": False}),  # the playbook's own path: no incident
        registry=scripted_registry(
            {
                **L1_TO_ACCOUNT,
                "pbx.get_account": [refused],
                "net.check_path": [
                    ActionResult(
                        outcome="tcp_refused",
                        summary=(
                            "The PBX host pbx1 refuses connections on its SIP port 5061 (TCP): nothing "
                            "listens there, or a firewall rejects them."
                        ),
                        facts={
                            "server_path": "tcp_refused",
                            "sip_port": "refuses",
                            "sip_target": "pbx1:5061/tls",
                        },
                    )
                ],
                "app.test_network": [observed("tcp_refused", device_path="tcp_refused")],
            }
        ),
    )
    _, run_id = file(svc)
    run, steps, _comments, _ticket = load(svc, run_id)
    assert ("check_account", "error") in steps and ("check_asterisk", "down") in steps  # decided
    assert {k: run.facts[k] for k in ("ari", "sip_port", "server_path")} == {
        "ari": "refused",
        "sip_port": "refuses",
        "server_path": "tcp_refused",
    }
    prompt = open_prompt(svc, run_id)
    assert (prompt.step, prompt.level) == ("fix_cause", 2)
    assert prompt.question == (
        "Asterisk on pbx1 does not answer: ARI refused connbot's connection; SIP pbx1:5061/tls refused "
        "the connection; the user's device was refused too. Start or restart Asterisk on pbx1"
        "; if it runs, check the host's firewall, which refuses connections the same way."
    )


# Level 1 finds nothing wrong, level 2 account look-ups of 2200 ms and nothing in the logs: the PBX
# looks overloaded, and level 2 is asked to relieve it.
SLOW_PBX = {
    **L1_TO_ACCOUNT,
    "pbx.get_account": ["exists"],
    "pbx.compare_credentials": ["match"],
    **L2_PASSING,
    "pbx.check_database": [
        ActionResult(
            outcome="db_ok",
            summary="The realtime database answers; looking up 1001 took 2200 ms.",
            facts={"pbx": "pbx1", "config_lookup": "found", "config_lookup_ms": 2200},
        )
    ],
    "logs.classify": ["none_found"],
}


def test_a_fix_level_2_was_asked_to_do_and_nobody_answered_is_said_to_level_3(make_services, settings):
    """Level 2 was asked to do the leading cause's fix and no one answered in time: level 3 reads that,
    and the fix, which nobody tried, after it."""
    svc = make_services(
        settings=settings.model_copy(update={"incidents": False}),  # the playbook's own path: no incident
        registry=scripted_registry(SLOW_PBX),
    )
    now = [dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)]
    svc.context.clock = lambda: now[0]
    _, run_id = file(svc)
    asked = open_prompt(svc, run_id)
    assert asked.level == 2
    now[0] += dt.timedelta(hours=4, seconds=1)
    assert sweeper.sweep(svc.context)["expired"] == 1
    svc.queue.run_pending()
    run, _steps, comments, _ticket = load(svc, run_id)
    assert run.end_level == 3
    leading = next(line for line in comments[-1].splitlines() if line.startswith("Leading cause:"))
    assert leading.endswith(
        "account look-ups take 2200 ms. Level 2 was asked to do its fix; no one answered within 4 h. "
        "Find what loads pbx1 (CPU, database, traffic) and relieve it."
    ), leading


def test_the_escalation_comment_names_the_leading_cause_from_the_findings(make_services, settings):
    svc = make_services(
        settings=settings.model_copy(update={"incidents": False}),  # the playbook's own path: no incident
        registry=scripted_registry(SLOW_PBX),
    )
    _, run_id = file(svc)
    assert answer(svc, open_prompt(svc, run_id).id, "not_fixed", who="l2-agent")
    run, _steps, comments, _ticket = load(svc, run_id)
    assert run.end_level == 3
    assert "Nothing arose" not in comments[-1]
    assert (
        "Leading cause: The PBX is slow or overloaded (50%). Asterisk on pbx1 shows signs of overload: "
        "account look-ups take 2200 ms." in comments[-1]
    )
    level1 = next(c for c in comments if c.startswith("Level 1 checks done"))
    assert "The findings point at no single cause." in level1
