"""Routing rules, tried in order: a ticket field, the reporter's e-mail domain, a regex on the summary;
a person's remembered answer beats the rules; per-instance Jira escalation targets."""

from __future__ import annotations

import datetime as dt

import pytest
import responses

from bot.fleet.directory import parse
from bot.runs import routing
from bot.state.models import PbxRoute, Ticket
from bot.state.store import Store
from integrations.jira.settings import JiraSettings
from integrations.jira.tickets import JiraTickets
from integrations.settings import SettingsError
from integrations.tickets import Note, TicketRef
from tests.fakes import jira as fake_jira
from tests.fakes.fleet import ROUTING, SECRETS, instance, two_customers

NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def directory(monkeypatch, routing_rules=ROUTING):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return parse({**two_customers((5060, 5060)), "routing": routing_rules}, "test")


def ticket(summary="can't connect", reporter="", **fields) -> Ticket:
    return Ticket(source="desk", key="DESK-1", summary=summary, reporter=reporter, fields=fields)


def store(settings) -> Store:
    st = Store(settings.sqlalchemy_url)
    st.upgrade()
    return st


def test_rules_find_keys_in_field_values_option_objects_lists_domains_and_summaries(monkeypatch):
    d = directory(
        monkeypatch,
        [
            {"field": "customfield_10002"},
            {"field": "component"},
            "email_domain",
            {"summary": r"\[(?P<customer>[A-Za-z0-9-]+)\]"},
        ],
    )
    t = ticket(
        "[Globex] softphone offline",
        "bob@Acme.Example",
        customfield_10002=[{"id": "7", "name": "Initech"}, {"value": "Hooli"}],
        components=["Voice", "GLOBEX"],
    )
    assert [k for k, _ in routing.candidates(d, t)] == [
        "Initech",
        "Hooli",
        "Voice",
        "GLOBEX",
        "acme.example",
        "Globex",
    ]
    jira_reporter = ticket(reporter="557058:b2e1")
    jira_reporter.fields = {"reporter": {"email": "carl@globex.example", "account_id": "557058:b2e1"}}
    assert routing.email_domain(jira_reporter) == "globex.example"


def test_the_first_key_an_instance_lists_wins_in_rule_order(monkeypatch, settings):
    d = directory(monkeypatch)
    with store(settings).tx() as s:
        found = routing.route(s, d, ticket("[GLOBEX] down", "a@acme.example", customer="Initech"))
        assert found == routing.Route("acme", "the reporter's e-mail domain is acme.example")
        assert routing.route(s, d, ticket("[globex] down", "a@initech.example")) == routing.Route(
            "globex", "the summary names 'globex'"
        )
        assert routing.route(s, d, ticket("nothing here", "front desk")) is None


def test_a_remembered_answer_comes_before_the_rules_and_one_for_a_removed_instance_is_ignored(
    monkeypatch, settings
):
    d = directory(monkeypatch)
    with store(settings).tx() as s:
        t = ticket("[ACME] down", "a@initech.example")
        assert routing.route(s, d, t).pbx == "acme"
        routing.answer(s, d, t, "globex+remember", "bob", NOW)
        s.flush()
        assert s.get(PbxRoute, "initech.example").pbx == "globex"
        assert routing.route(s, d, t) == routing.Route(
            "globex", "the reporter's e-mail domain is initech.example, remembered for initech.example by bob"
        )
        s.get(PbxRoute, "initech.example").pbx = "gone"
        s.flush()
        assert routing.route(s, d, t).pbx == "acme"
        assert routing.answer(s, d, t, "acme", "eve", NOW) == routing.Route("acme", "chosen by eve")
        assert s.get(PbxRoute, "initech.example").pbx == "gone"  # not asked to remember: nothing changes


def test_jira_escalation_uses_the_instances_target_and_falls_back_per_level(monkeypatch):
    fake_jira.configure(
        monkeypatch, ESCALATION='{"2": {"assignee": "everyone-l2"}, "3": {"assignee": "everyone-l3"}}'
    )
    d = directory(monkeypatch)
    by_pbx = {i.name: i.escalation for i in d.instances if i.escalation}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        jira = fake_jira.FakeJira(rsps)
        tickets = JiraTickets(JiraSettings(), by_pbx=by_pbx)
        note = Note(heading="Escalated")
        tickets.escalate(TicketRef(source="jira", key="G-1", pbx="globex"), 2, note, "m1")
        tickets.escalate(TicketRef(source="jira", key="G-2", pbx="globex"), 3, note, "m2")
        tickets.escalate(TicketRef(source="jira", key="A-1", pbx="acme"), 2, note, "m3")
    assert jira.issue("G-1").assignee == {"accountId": "globex-l2"} and jira.issue("G-1").components == [
        "Globex voice"
    ]
    assert jira.issue("G-2").assignee == {"accountId": "everyone-l3"}
    assert jira.issue("A-1").assignee == {"accountId": "everyone-l2"}


def test_an_instance_name_leaves_room_for_the_remember_answer(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    bad = instance("acme", [], 5060)
    bad["name"] = "a" * 56
    with pytest.raises(
        SettingsError, match=r"instance 'a{56}' \(entry 1\): name: String should match pattern"
    ):
        parse({"instances": [bad]}, "test")
