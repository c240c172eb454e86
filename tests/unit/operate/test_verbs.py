"""Operator verbs through the JSON API and the CLI: cancel, retry, re-run, triage, retry a failed
effect, hand a question on; each recorded and written on the ticket, none racing a live worker."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli.main import main
from bot.runs.prompts import Via, new_id
from bot.state.models import Comment, Effect, OperatorAction, Prompt, Run, Ticket
from bot.web.app import create_app
from integrations.tickets import VIA
from tests.fakes.adapters import scripted_registry
from tests.unit.test_runner import file, load, open_prompt


@pytest.fixture
def svc(make_services):
    # no adapter is configured: every step is a question to a person
    return make_services(registry=scripted_registry({}, systems=()))


@pytest.fixture
def api(svc):
    return create_app(svc.settings, svc).test_client()


def connbot(svc, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"CONNBOT_DATA_DIR": str(svc.settings.data_dir)})


def comments(svc, run_id):
    return load(svc, run_id)[2]


def actions(svc):
    with svc.store.tx() as s:
        return [(a.verb, a.who, a.via, a.why) for a in s.scalars(select(OperatorAction))]


def killed_worker_held(svc, run_id, expired: bool) -> None:
    """A worker took the run's lease and was killed: its lease runs on, or ran out."""
    assert svc.store.acquire(run_id, "worker-killed-mid-step", 60)
    if expired:
        with svc.store.tx() as s:
            s.get(Run, run_id).lease_until = svc.context.clock() - dt.timedelta(seconds=1)


def test_cancel_through_the_api_withdraws_the_question_ends_the_run_and_says_so(svc, api):
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    resp = api.post(f"/api/runs/{run_id}/cancel", json={"by": "carol", "why": "duplicate of DESK-7"})
    assert resp.status_code == 200, resp.json
    assert resp.json["done"].startswith(f"carol cancelled run {run_id} at ")
    svc.queue.run_pending()
    run = load(svc, run_id)[0]
    assert (run.state, run.end_kind, run.end_reason) == (
        "ended",
        "cancel",
        "cancelled by carol: duplicate of DESK-7",
    )
    with svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).state == "cancelled"
    said = comments(svc, run_id)[-1]
    assert f"carol cancelled run {run_id}" in said and "Why: duplicate of DESK-7" in said
    assert "' (through the API)" in said and "via api" not in said
    assert actions(svc) == [("cancel", "carol", "api", "duplicate of DESK-7")]
    assert api.get(f"/api/runs/{run_id}").json["actions"][0]["who"] == "carol"
    again = api.post(f"/api/runs/{run_id}/cancel", json={"by": "carol"})
    assert again.status_code == 409 and "already ended" in again.json["message"]


def test_a_verb_beside_a_live_worker_is_refused_and_after_a_killed_workers_lease_it_works(svc, api):
    _, run_id = file(svc)
    killed_worker_held(svc, run_id, expired=False)
    busy = api.post(f"/api/runs/{run_id}/cancel", json={"by": "carol"})
    assert busy.status_code == 409
    assert f"a worker is advancing run {run_id} right now" in busy.json["message"]
    assert load(svc, run_id)[0].state == "waiting" and actions(svc) == []
    killed_worker_held(svc, run_id, expired=True)
    assert api.post(f"/api/runs/{run_id}/cancel", json={"by": "carol"}).status_code == 200
    svc.queue.run_pending()
    assert load(svc, run_id)[0].end_kind == "cancel"


def test_retry_through_the_api_asks_the_current_step_afresh(svc, api):
    _, run_id = file(svc)
    first = open_prompt(svc, run_id)
    resp = api.post(f"/api/runs/{run_id}/retry", json={"by": "carol", "why": "the app team fixed the API"})
    assert resp.status_code == 200 and "the question is withdrawn" in resp.json["done"]
    svc.queue.run_pending()
    second = open_prompt(svc, run_id)
    assert second.id != first.id and second.step == first.step and second.seq > first.seq
    assert any("carol retried" in c for c in comments(svc, run_id))


def test_rerun_through_the_api_from_a_step_starts_a_new_run_there(svc, api):
    _, run_id = file(svc)
    bad = api.post(f"/api/runs/{run_id}/rerun", json={"by": "carol", "from": "no_such_step"})
    assert bad.status_code == 400 and "no step 'no_such_step'" in bad.json["message"]
    resp = api.post("/api/runs/DESK-1/rerun", json={"by": "carol", "from": "check_config"})
    assert resp.status_code == 200, resp.json
    new_id = resp.json["run"]["id"]
    assert new_id != run_id and resp.json["run"]["ticket"] == "DESK-1"
    svc.queue.run_pending()
    assert load(svc, run_id)[0].end_kind == "rerun"
    assert open_prompt(svc, new_id).step == "check_config"
    assert any(f"as run {new_id}" in c for c in comments(svc, run_id))
    stale = api.post(f"/api/runs/{run_id}/rerun", json={"by": "carol"})
    assert stale.status_code == 409 and f"re-run run {new_id}" in stale.json["message"]


def test_retry_a_failed_effect_through_the_api_makes_it_again(svc, api):
    _, run_id = file(svc)
    with svc.store.tx() as s:  # the start note's write never landed, and connbot gave up on it
        effect = s.scalars(select(Effect).where(Effect.key == f"run:{run_id}:start")).one()
        effect.state, effect.error = "failed", "403 Forbidden"
        s.execute(Comment.__table__.delete().where(Comment.marker == effect.key))
        effect_id = effect.id
    assert not any("connbot is triaging" in c for c in comments(svc, run_id))
    assert api.get(f"/api/runs/{run_id}").json["failed_effects"][0]["id"] == effect_id
    resp = api.post(f"/api/effects/{effect_id}/retry", json={"by": "carol", "why": "Jira permissions fixed"})
    assert resp.status_code == 200, resp.json
    svc.queue.run_pending()
    with svc.store.tx() as s:
        assert s.get(Effect, effect_id).state == "done"
    assert sum("connbot is triaging" in c for c in comments(svc, run_id)) == 1
    again = api.post(f"/api/effects/{effect_id}/retry", json={"by": "carol"})
    assert again.status_code == 409 and "not failed" in again.json["message"]


def test_hand_through_the_api_names_the_new_person_on_the_question_and_the_ticket(svc, api):
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    resp = api.post(f"/api/prompts/{prompt.id}/hand", json={"by": "carol", "to": "dave", "why": "on call"})
    assert resp.status_code == 200, resp.json
    svc.queue.run_pending()
    listed = api.get("/api/prompts").json["prompts"]
    assert [p["handed_to"] for p in listed] == ["dave"]
    assert any("carol handed the question" in c and "to dave" in c for c in comments(svc, run_id))
    assert api.post(f"/api/prompts/{prompt.id}/hand", json={"by": "carol"}).status_code == 400


def test_triage_through_the_api_starts_a_ticket_connbot_left_alone(svc, api):
    with svc.store.tx() as s:
        s.add(Ticket(source="desk", key="DESK-50", summary="Printer jam", user_ref="1002", matched=False))
    resp = api.post("/api/tickets/DESK-50/triage", json={"by": "carol", "why": "it is a softphone after all"})
    assert resp.status_code == 200, resp.json
    svc.queue.run_pending()
    assert open_prompt(svc, resp.json["run"]["id"]).step == "check_status"
    again = api.post("/api/tickets/DESK-50/triage", json={"by": "carol"})
    assert again.status_code == 409 and "re-run it instead" in again.json["message"]
    assert api.post("/api/tickets/NOPE-1/triage", json={"by": "carol"}).status_code == 404


def test_a_questions_id_is_never_read_as_an_option_by_the_cli() -> None:
    """`connbot prompts hand <id>` takes the id as an argument, and click reads one that begins with "-"
    as an option (a usage error): one id in 64 did, and so did the test below now and then."""
    ids = {new_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and not [i for i in ids if i.startswith("-")]


def test_every_verb_through_the_cli_including_on_a_run_a_killed_worker_held(svc):
    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    handed = connbot(svc, "prompts", "hand", prompt.id, "--to", "U0DAVE", "--by", "carol")
    assert handed.exit_code == 0 and "carol handed the question" in handed.output

    killed_worker_held(svc, run_id, expired=False)
    busy = connbot(svc, "runs", "retry", str(run_id), "--by", "carol")
    assert busy.exit_code == 3 and "a worker is advancing run" in busy.output
    killed_worker_held(svc, run_id, expired=True)
    retried = connbot(svc, "runs", "retry", str(run_id), "--by", "carol", "--why", "adapter back")
    assert retried.exit_code == 0, retried.output
    svc.queue.run_pending()

    rerun = connbot(svc, "runs", "rerun", "DESK-1", "--from", "check_config", "--by", "carol")
    assert rerun.exit_code == 0 and "re-ran ticket DESK-1 from" in rerun.output
    svc.queue.run_pending()
    with svc.store.tx() as s:
        new_id = s.scalar(select(Run.id).where(Run.active_ticket_id.is_not(None)))
    cancelled = connbot(svc, "runs", "cancel", str(new_id), "--by", "carol", "--why", "user left")
    assert cancelled.exit_code == 0, cancelled.output
    svc.queue.run_pending()
    assert connbot(svc, "runs", "cancel", "999").exit_code == 1

    with svc.store.tx() as s:
        effect = s.scalars(select(Effect).where(Effect.run_id == new_id)).first()
        effect.state, effect_id = "failed", effect.id
    assert str(effect_id) in connbot(svc, "effects", "list").output
    assert connbot(svc, "effects", "retry", str(effect_id), "--by", "carol").exit_code == 0
    with svc.store.tx() as s:
        s.add(Ticket(source="desk", key="DESK-60", summary="Printer jam", matched=False))
    assert connbot(svc, "runs", "triage", "DESK-60", "--by", "carol").exit_code == 0

    assert [(v, via) for v, _, via, _ in actions(svc)] == [
        ("hand", "cli"),
        ("retry", "cli"),
        ("rerun", "cli"),
        ("cancel", "cli"),
        ("effect.retry", "cli"),
        ("triage", "cli"),
    ]
    shown = connbot(svc, "runs", "show", str(new_id)).output
    assert "state: cancelled: cancelled by carol: user left" in shown and "carol cancelled run" in shown


def test_the_run_pages_buttons_take_the_verbs(svc, api):
    from tests.fakes.desk import csrf

    _, run_id = file(svc)
    prompt = open_prompt(svc, run_id)
    page = api.get(f"/runs/{run_id}").get_data(as_text=True)
    assert 'id="do-cancel"' in page and 'id="do-hand"' in page and 'value="check_config"' in page
    token = csrf(api, f"/runs/{run_id}")
    handed = api.post(
        f"/runs/{run_id}/act",
        data={"csrf_token": token, "name": "erin", "verb": "hand", "prompt": prompt.id, "to": "dave"},
        follow_redirects=True,
    )
    assert "erin handed the question" in handed.get_data(as_text=True)
    # the question's card says whom it was handed to, on the prompts page too
    assert "handed to <strong>dave</strong>" in api.get("/prompts").get_data(as_text=True)
    rerun = api.post(
        f"/runs/{run_id}/act",
        data={"csrf_token": token, "name": "erin", "verb": "rerun", "from": "", "why": "new playbook"},
    )
    assert rerun.status_code == 303 and rerun.location != f"/runs/{run_id}"
    refused = api.post(
        f"/runs/{run_id}/act",
        data={"csrf_token": token, "name": "erin", "verb": "cancel"},
        follow_redirects=True,
    )
    assert "has already ended" in refused.get_data(as_text=True)
    assert [(v, via) for v, _, via, _ in actions(svc)] == [("hand", "desk"), ("rerun", "desk")]


def test_a_held_run_cancelled_leaves_its_incident_and_one_re_run_waits_for_it_again(svc, api):
    from bot.state.models import Incident

    _, first = file(svc)
    _, second = file(svc, "Bob can't connect either")
    with svc.store.tx() as s:
        inc = Incident(
            pbx="",
            cause="asterisk_down",
            title="Asterisk is down",
            active_key="|asterisk_down",
            opened_by="test",
            next_check_at=svc.context.clock() + dt.timedelta(hours=1),
        )
        s.add(inc)
        s.flush()
        incident_id = inc.id
        for run_id in (first, second):
            run = s.get(Run, run_id)
            run.state, run.incident_id = "held", incident_id
    refused = api.post(f"/api/runs/{first}/retry", json={"by": "carol"})
    assert refused.status_code == 409 and f"held by incident {incident_id}" in refused.json["message"]

    cancelled = api.post(f"/api/runs/{first}/cancel", json={"by": "carol", "why": "user gave up"})
    assert cancelled.status_code == 200 and f"leaves incident {incident_id}" in cancelled.json["done"]
    rerun = api.post(f"/api/runs/{second}/rerun", json={"by": "carol"})
    assert rerun.status_code == 200
    svc.queue.run_pending()
    assert any(f"While incident {incident_id} is open" in c for c in comments(svc, second))
    new = rerun.json["run"]["id"]
    with svc.store.tx() as s:
        assert s.get(Run, first).state == "ended" and s.get(Incident, incident_id).state == "open"
        assert (s.get(Run, new).state, s.get(Run, new).incident_id) == ("held", incident_id)


def test_every_place_a_person_acts_from_is_said_in_words() -> None:
    assert set(VIA) == {v.value for v in Via}
