"""Answering prompts from the desk's pages: the Slack message's content, one click, first answer wins."""

from __future__ import annotations

import re

import pytest

from bot.runs import intake
from bot.state.models import Prompt, Run, Ticket
from bot.web.app import create_app
from tests.fakes.adapters import LEVEL_1_CANNOT_FIX, account_not_found, observed, scripted_registry
from tests.fakes.desk import csrf


def _waiting_prompt(svc) -> str:
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "alice@example.com", "1001")
    svc.queue.run_pending()
    with svc.store.tx() as s:
        prompt = s.query(Prompt).one()
        return prompt.id


def test_the_page_shows_what_the_slack_message_shows(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    page = client.get("/prompts").get_data(as_text=True)
    assert f'id="prompt-{prompt_id}"' in page
    assert "Fix the configuration by hand" in page  # the step
    assert "DESK-1" in page and "Alice can&#39;t connect" in page and "1001" in page  # ticket and user
    assert "Check the configuration of the application" in page and "wrong_host" in page  # what was found
    assert "connbot could not change the app&#39;s configuration" in page  # question with instructions
    assert 'data-answer="connected"' in page and 'data-answer="still_failing"' in page  # options
    assert 'name="name"' in page  # on loopback the person gives a name


def test_one_click_answers_and_the_run_goes_on_to_close(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    resp = client.post(
        f"/prompts/{prompt_id}/answer",
        data={
            "csrf_token": csrf(client, "/prompts"),
            "answer": "connected",
            "name": "Carol",
            "next": "/prompts",
        },
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/prompts"
    assert "DESK-1: answered “Fixed, the app connects (connbot checks again)”" in client.get(
        "/prompts"
    ).get_data(as_text=True)
    svc.queue.run_pending()
    with svc.store.tx() as s:
        prompt = s.get(Prompt, prompt_id)
        assert (prompt.answered_by, prompt.answered_via, prompt.answer) == ("Carol", "desk", "connected")
        run = s.query(Run).one()
        assert run.end_kind == "close" and run.steps[-3].answered_by == "Carol"
        assert run.steps[-2].step == "recheck_config"  # connbot checked the person's word
        assert s.query(Ticket).one().status == "closed"


def test_the_first_answer_wins_and_a_late_click_says_who_answered(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    late = client.application.test_client()
    token, late_token = csrf(client, "/prompts"), csrf(late, "/prompts")
    client.post(
        f"/prompts/{prompt_id}/answer", data={"csrf_token": token, "answer": "connected", "name": "Carol"}
    )
    resp = late.post(
        f"/prompts/{prompt_id}/answer",
        data={"csrf_token": late_token, "answer": "still_failing", "name": "Dave"},
        follow_redirects=True,
    )
    assert "this question was already answered by Carol" in resp.get_data(as_text=True)
    api = client.post(f"/api/prompts/{prompt_id}/answer", json={"answer": "still_failing", "by": "Erin"})
    assert api.status_code == 409 and api.get_json()["message"] == "already answered by Carol"
    with svc.store.tx() as s:
        assert s.get(Prompt, prompt_id).answer == "connected"


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"answer": "connected", "name": " "}, 200, "Give your name"),
        ({"answer": "maybe", "name": "Carol"}, 400, "answer must be one of connected, still_failing"),
    ],
)
def test_a_refused_answer_says_why_and_changes_nothing(desk, form, status, says):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    resp = client.post(
        f"/prompts/{prompt_id}/answer",
        data={"csrf_token": csrf(client, "/prompts"), **form},
        follow_redirects=True,
    )
    assert resp.status_code == status and says in resp.get_data(as_text=True)
    with svc.store.tx() as s:
        assert s.get(Prompt, prompt_id).state == "open"


def test_a_redirect_after_answering_stays_on_this_site(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    resp = client.post(
        f"/prompts/{prompt_id}/answer",
        data={
            "csrf_token": csrf(client, "/prompts"),
            "answer": "connected",
            "name": "Carol",
            "next": "//evil.example/x",
        },
    )
    assert resp.headers["Location"] == "/prompts"


def test_an_answer_through_the_json_api_is_recorded_via_api(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    resp = client.post(f"/api/prompts/{prompt_id}/answer", json={"answer": "connected", "by": "Erin"})
    assert resp.status_code == 200 and resp.get_json()["answered_via"] == "api"
    svc.queue.run_pending()
    page = client.get("/tickets/DESK-1").get_data(as_text=True)
    assert "Answered by Erin through the API" in page


def test_the_card_shows_the_finding_the_age_and_links(desk):
    svc, client = desk
    prompt_id = _waiting_prompt(svc)
    page = client.get("/prompts").get_data(as_text=True)
    card = page[page.index(f'id="prompt-{prompt_id}"') :]
    finding = card[card.index('class="finding"') : card.index("</div>")]
    assert "Fix the configuration" in finding  # the step that led here, its outcome in the playbook's words
    assert '<span class="outcome">connbot may not change the app&#39;s configuration</span>' in finding
    assert card.index('class="finding"') < card.index("connbot could not change")  # inside, before the ask
    assert 'href="/runs/1"' in card and 'href="/tickets/DESK-1"' in card
    assert re.search(r"asked \d+ s ago", card) and 'id="level-1"' in page


def test_the_decisive_finding_is_the_last_check_not_a_decision(make_services):
    """Before an account approval the playbook decides on the findings (account_gate): the card shows
    the check that decided it (the database answers), not the decision, which found nothing."""
    svc = make_services(
        registry=scripted_registry(
            {
                "app.get_status": ["failed"],
                "app.reconnect": ["still_failing"],
                "app.get_last_error": ["found"],
                "app.check_config": ["ok"],
                "pbx.get_account": [account_not_found()],
                "pbx.check_database": [observed("db_ok", realtime_db="ok")],
            }
        )
    )
    client = create_app(svc.settings, svc).test_client()
    _waiting_prompt(svc)
    page = client.get("/prompts").get_data(as_text=True)
    box = re.search(r'<div class="finding" role="note">(.*?)</div>', page, re.S)
    assert box and "Check the PBX&#39;s account database before changing an account" in box.group(1)
    assert "Decide whether the account can be changed" not in box.group(1)


@pytest.mark.parametrize(
    "device, step",
    [
        # every level 2 check passes: no cause stands out, the playbook goes on to the client logs
        ("ok", "read_client_logs"),
        # the device's own test gets no answer where connbot's does: the playbook decides on the
        # leading cause alone (the user's network)
        (observed("sip_no_response", device_path="sip_no_response"), "fix_cause"),
    ],
)
def test_a_question_after_a_decision_on_no_finding_shows_no_check_as_decisive(make_services, device, step):
    """The level 2 decision before the question went by the leading cause (or for want of one), not
    by a finding: the card does not show the last check (the database answers) as what led here;
    the question states the diagnosis."""
    svc = make_services(
        registry=scripted_registry(
            {
                **LEVEL_1_CANNOT_FIX,
                "net.check_path": [observed("ok", server_path="ok")],
                "app.test_network": [device],
                "pbx.health": ["up"],
                "pbx.check_database": ["db_ok"],
            },
            systems=("app", "pbx", "net"),
        )
    )
    client = create_app(svc.settings, svc).test_client()
    _waiting_prompt(svc)
    with svc.store.tx() as s:
        assert s.query(Prompt).one().step == step
    page = client.get("/prompts").get_data(as_text=True)
    assert 'class="finding"' not in page
