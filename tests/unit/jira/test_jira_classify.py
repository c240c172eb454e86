from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.runs import intake
from bot.runs.classify import Candidate, Rules, classify
from bot.state.models import Event, Run, Ticket
from integrations.jira.models import error_text
from integrations.jira.settings import DEFAULT_KEYWORDS, JiraSettings
from integrations.settings import SettingsError, load
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import configure, fixture

DEFAULTS = Rules(keywords=DEFAULT_KEYWORDS)


@pytest.mark.parametrize(
    "summary, description",
    [
        ("Softphone can't connect", ""),
        ("Softphone can’t connect", ""),  # typographic apostrophe
        ("App says CONNECTION FAILED", ""),
        ("Help", "Since the update the app is offline all day"),
        ("Registration failed on my phone", ""),
        ("No service on the desk app", ""),
        ("Keeps showing Not Registered", ""),
        ("Cannot connect to the PBX", ""),
    ],
)
def test_default_keywords_match_common_phrasings(summary, description):
    decision = classify(DEFAULTS, Candidate(summary=summary, description=description))
    assert decision.matched and "mentions" in decision.reason


@pytest.mark.parametrize(
    "summary", ["Printer is out of toner", "Connected the new monitor", "Offlineness report"]
)
def test_unrelated_tickets_do_not_match(summary):
    decision = classify(DEFAULTS, Candidate(summary=summary))
    assert not decision.matched and decision.reason.startswith("no rule matched")


def test_scope_and_signals():
    rules = Rules(
        projects=["VOIP"],
        issue_types=["Incident"],
        labels=["voip-connect"],
        components=["Softphone"],
        request_types=["Softphone problem"],
        keywords=DEFAULT_KEYWORDS,
        patterns=[r"\bSIP/2\.0 40[13]\b"],
    )
    inside = dict(project="VOIP", issue_type="incident")
    assert (
        classify(rules, Candidate(summary="can't connect", project="HR", issue_type="Incident")).reason
        == "project HR is not one of VOIP"
    )
    assert not classify(rules, Candidate(summary="can't connect", project="VOIP", issue_type="Story")).matched
    assert (
        classify(rules, Candidate(labels=["voip-connect"], **inside)).reason
        == "label 'voip-connect' marks connection issues"
    )
    assert "component 'Softphone'" in classify(rules, Candidate(components=["Softphone"], **inside)).reason
    assert "request type" in classify(rules, Candidate(request_type="Softphone problem", **inside)).reason
    assert "matches /" in classify(rules, Candidate(description="got SIP/2.0 403 back", **inside)).reason


def test_error_text_is_taken_from_code_noformat_and_quoted_lines():
    description = (
        "Hi\n{code:java}\nE/SIP: 408 Request Timeout\n{code}\n"
        "> Registration failed (503)\nbq. no network\nthanks"
    )
    assert error_text(description) == "E/SIP: 408 Request Timeout\nRegistration failed (503)\nno network"
    assert error_text("nothing quoted here") == ""


def test_lists_take_commas_or_json(monkeypatch):
    monkeypatch.setenv("CONNBOT_JIRA_LABELS", "voip, softphone")
    monkeypatch.setenv("CONNBOT_JIRA_PROJECTS", '["VOIP", "HELP"]')
    monkeypatch.setenv("CONNBOT_JIRA_ESCALATION", '{"2": {"assignee": "abc", "labels": ["l2"]}}')
    jira = JiraSettings()
    assert jira.labels == ["voip", "softphone"] and jira.projects == ["VOIP", "HELP"]
    assert jira.escalation[2].assignee == "abc"


def test_a_url_without_credentials_names_the_settings_and_no_secret(monkeypatch):
    monkeypatch.setenv("CONNBOT_JIRA_URL", "https://example.atlassian.net")
    monkeypatch.setenv("CONNBOT_JIRA_API_TOKEN", "do-not-print-me")
    with pytest.raises(SettingsError) as err:
        load(JiraSettings)
    assert "CONNBOT_JIRA_EMAIL" in str(err.value) and "do-not-print-me" not in str(err.value)


def _deliver(svc, payload, delivery):
    event_id, _ = intake.record(
        svc.store,
        "jira",
        delivery,
        payload["webhookEvent"],
        payload["issue"]["key"],
        json.dumps(payload),
        lambda event_id: None,
    )
    intake.process(svc.context, event_id)
    svc.queue.huey.flush()  # the run is started, not advanced: intake is what this test is about
    with svc.store.tx() as s:
        ticket = s.scalars(select(Ticket).where(Ticket.key == payload["issue"]["key"])).one()
        return ticket, len(ticket.runs), s.get(Event, event_id).outcome


def test_a_later_update_adding_a_label_starts_the_run_then(monkeypatch, make_services):
    configure(monkeypatch, LABELS="voip-connect")
    svc = make_services(registry=scripted_registry({}))
    created = fixture("server_issue_created.json")
    ticket, runs, outcome = _deliver(svc, created, "d-1")
    assert (ticket.matched, runs) == (False, 0) and outcome.startswith("not a connection issue")

    updated = json.loads(json.dumps(created))
    updated["webhookEvent"], updated["timestamp"] = "jira:issue_updated", created["timestamp"] + 60_000
    updated["issue"]["fields"]["labels"] = ["voip-connect"]
    ticket, runs, outcome = _deliver(svc, updated, "d-2")
    assert ticket.matched and ticket.match_reason == "label 'voip-connect' marks connection issues"
    assert runs == 1 and outcome.startswith("started run")

    # A delivery older than the one applied (out of order) changes nothing.
    stale = json.loads(json.dumps(created))
    stale["issue"]["fields"]["summary"] = "stale"
    ticket, runs, _ = _deliver(svc, stale, "d-0")
    assert ticket.summary == "Printer on floor 3 is out of toner" and ticket.fields["labels"] == [
        "voip-connect"
    ]

    # An update after the run started never starts another.
    later = json.loads(json.dumps(updated))
    later["timestamp"] += 60_000
    _, runs, outcome = _deliver(svc, later, "d-3")
    assert runs == 1 and outcome == "ticket already has a run"
    with svc.store.tx() as s:
        assert len(list(s.scalars(select(Run)))) == 1


def test_a_trimmed_comment_payload_keeps_what_it_does_not_carry(monkeypatch, make_services):
    configure(monkeypatch)
    svc = make_services(registry=scripted_registry({}))
    created = fixture("server_issue_created.json")
    created["issue"]["key"] = "TEST-24"
    created["issue"]["fields"]["description"] = "{noformat}403 Forbidden{noformat}"
    _deliver(svc, created, "d-1")
    comment = fixture("cloud_comment_created.json")
    ticket, _, _ = _deliver(svc, comment, "d-2")
    assert ticket.summary == "test" and ticket.description == "{noformat}403 Forbidden{noformat}"
    assert ticket.fields["error_text"] == "403 Forbidden"


@pytest.mark.parametrize(
    "name, setting, service",
    [
        ("cloud_service_request_created.json", "", True),  # projectTypeKey: service_desk
        ("cloud_issue_created.json", "", False),  # projectTypeKey: software
        ("server_issue_created.json", "", False),  # Server 7: no projectTypeKey
        ("server_issue_created.json", "TEST,HELP", True),  # ... named in CONNBOT_JIRA_SERVICE_PROJECTS
    ],
)
def test_a_service_project_is_known_by_its_project_type_or_the_setting(
    monkeypatch, make_services, name, setting, service
):
    configure(monkeypatch, SERVICE_PROJECTS=setting)
    svc = make_services(registry=scripted_registry({}))
    ticket, _, _ = _deliver(svc, fixture(name), "d-1")
    assert ticket.fields["service_desk"] is service
