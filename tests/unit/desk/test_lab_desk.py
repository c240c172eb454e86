"""The lab on the desk: filing with a scenario (its API and the desk's form), the simulation banner on
every page, the Reset, and nothing of the lab when it is not running."""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from bot.lab import SCENARIOS, Lab
from bot.lab import web as lab_web
from bot.state.models import Ticket
from bot.web.app import create_app
from tests.fakes.desk import csrf, one_prompt_registry

BANNER = "Lab: this is a simulation."


@pytest.fixture
def lab_desk_client(make_services, settings):
    """The desk of a process whose lab runs (the desk only reads the lab's scenarios)."""
    svc = make_services(registry=one_prompt_registry())
    app = create_app(svc.settings, svc)
    lab_web.install(app, Lab(settings.data_dir))
    return svc, app.test_client()


def test_the_production_api_knows_no_scenario_and_has_no_lab_routes(desk):
    svc, client = desk
    resp = client.post("/api/tickets", json={"summary": "x", "scenario": "password_mismatch"})
    assert resp.status_code == 400
    assert resp.get_json()["message"] == "scenario: Extra inputs are not permitted"
    for path in ("/api/lab/tickets", "/api/lab/reset"):
        assert client.post(path, json={"summary": "x", "scenario": "password_mismatch"}).status_code == 404
    with svc.store.tx() as s:
        assert s.scalars(select(Ticket)).first() is None


def test_no_banner_and_no_scenarios_without_the_lab(desk):
    _, client = desk
    page = client.get("/").get_data(as_text=True)
    assert BANNER not in page and 'name="scenario"' not in page


def test_an_unknown_scenario_is_named(lab_desk_client):
    _, client = lab_desk_client
    resp = client.post("/api/lab/tickets", json={"summary": "x", "scenario": "cosmic_rays"})
    assert resp.status_code == 400
    assert (
        resp.get_json()["message"]
        == f"scenario: unknown lab scenario 'cosmic_rays'; one of {', '.join(SCENARIOS)}"
    )


def test_a_scenario_goes_into_the_ticket_and_picks_its_lab_user(lab_desk_client):
    svc, client = lab_desk_client
    assert (
        client.post("/api/lab/tickets", json={"summary": "a", "scenario": "network_down"}).status_code == 201
    )
    assert (
        client.post(
            "/api/lab/tickets", json={"summary": "b", "scenario": "network_down", "user": "7777"}
        ).status_code
        == 201
    )
    with svc.store.tx() as s:
        tickets = s.scalars(select(Ticket).order_by(Ticket.id)).all()
        assert [(t.user_ref, t.fields) for t in tickets] == [
            ("2005", {"lab_scenario": "network_down"}),
            ("7777", {"lab_scenario": "network_down"}),
        ]


def test_every_page_says_it_is_a_simulation(lab_desk_client):
    _, client = lab_desk_client
    client.post("/api/lab/tickets", json={"summary": "a", "scenario": "logs_only"})
    for path in ("/", "/prompts", "/dashboard", "/tickets/DESK-1", "/runs/1", "/tickets/DESK-404"):
        assert BANNER in client.get(path).get_data(as_text=True), path
    assert "logs_only (simulation)" in client.get("/tickets/DESK-1").get_data(as_text=True)


def test_the_form_picks_password_mismatch_and_files_in_one_click(lab_desk_client):
    svc, client = lab_desk_client
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'<option value="password_mismatch" selected>Password mismatch</option>', page)
    assert all(f'<option value="{name}"' in page for name in SCENARIOS)
    assert str(escape(SCENARIOS["password_mismatch"].description)) in page
    form = {
        "csrf_token": csrf(client),
        "summary": re.search(r'name="summary"[^>]*value="([^"]*)"', page).group(1),
        "description": "",
        "reporter": "",
        "user": "",
        "scenario": re.search(r'<option value="(\w+)" selected', page).group(1),
    }
    resp = client.post("/tickets", data=form)
    assert resp.status_code == 303
    with svc.store.tx() as s:
        ticket = s.scalars(select(Ticket)).one()
        assert (ticket.summary, ticket.user_ref, ticket.fields) == (
            "The app cannot connect",
            "2004",
            {"lab_scenario": "password_mismatch"},
        )


def test_the_form_shows_a_bad_scenario_as_a_problem(lab_desk_client):
    _, client = lab_desk_client
    resp = client.post("/tickets", data={"csrf_token": csrf(client), "summary": "x", "scenario": "nope"})
    assert resp.status_code == 400
    assert "scenario: unknown lab scenario &#39;nope&#39;" in resp.get_data(as_text=True)


@pytest.fixture
def running_lab_client(make_services, settings):
    """The desk of a process whose lab really runs (simulators on loopback)."""
    with Lab(settings.data_dir, reconnect_seconds=0.05) as running:
        svc = make_services(registry=one_prompt_registry())
        app = create_app(svc.settings, svc)
        lab_web.install(app, running)
        yield running, app.test_client()


def test_the_api_reset_restores_every_scenario(running_lab_client):
    lab, client = running_lab_client
    inst = lab.instances["password_mismatch"]
    inst.objects["auth"]["2004"]["password"] = inst.app_password  # someone fixed it
    lab.instances["network_down"].pbx.stop()
    resp = client.post("/api/lab/reset")
    assert (resp.status_code, resp.get_json()) == (200, {"reset": list(SCENARIOS)})
    again = lab.instances["password_mismatch"]
    assert again.objects["auth"]["2004"]["password"] != again.app_password
    assert lab.instances["network_down"].pbx.running


def test_the_reset_button_resets_the_shared_lab(running_lab_client):
    lab, client = running_lab_client
    page = client.get("/").get_data(as_text=True)
    assert 'action="/lab/reset"' in page and "shared by everyone using this lab until it is reset" in page
    lab.instances["missing_account"].objects.setdefault("endpoint", {})["2003"] = {"auth": "2003"}
    resp = client.post("/lab/reset", data={"csrf_token": csrf(client)})
    assert resp.status_code == 303
    assert "every scenario is back to its initial state" in client.get("/").get_data(as_text=True)
    assert "2003" not in lab.instances["missing_account"].objects.get("endpoint", {})


def test_the_reset_button_needs_the_form_token(running_lab_client):
    lab, client = running_lab_client
    lab.instances["missing_account"].objects.setdefault("endpoint", {})["2003"] = {"auth": "2003"}
    client.get("/")
    assert client.post("/lab/reset", data={"csrf_token": "forged"}).status_code == 303
    assert "the lab was not reset" in client.get("/").get_data(as_text=True)
    assert "2003" in lab.instances["missing_account"].objects["endpoint"]
