"""Who may use the desk: open on loopback; a login, and CSRF tokens, everywhere else."""

from __future__ import annotations

import base64

import pytest

from bot.runs import intake
from bot.settings import Settings
from bot.state.models import Prompt, Ticket
from bot.web.app import create_app
from bot.web.auth import check_password, hash_password
from integrations.settings import SettingsError
from tests.fakes.desk import csrf

TOKEN = "s3cret-admin-token"


def _basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def public(tmp_path, make_services, monkeypatch):
    """A desk bound to every address, with an admin token and the desk user alice."""
    monkeypatch.setenv("CONNBOT_DESK_USERS", f"alice:{hash_password('alice-pw-123', iterations=1000)}")
    settings = Settings(data_dir=tmp_path / "data", host="0.0.0.0", admin_token=TOKEN)
    svc = make_services(settings=settings)
    return svc, create_app(settings, svc).test_client()


def test_on_loopback_pages_and_the_api_need_no_login(desk):
    _, client = desk
    assert client.get("/").status_code == 200
    assert client.post("/api/tickets", json={"summary": "x"}).status_code == 201


def test_a_request_from_another_address_needs_a_login_even_on_a_loopback_bind(desk):
    _, client = desk
    assert client.get("/", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 302
    assert client.get("/api/runs", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401


def test_off_loopback_pages_send_the_browser_to_the_login_and_the_api_answers_401(public):
    _, client = public
    resp = client.get("/prompts")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login?next=/prompts"
    for method, path in (("get", "/"), ("get", "/dashboard"), ("get", "/runs/1"), ("get", "/tickets/DESK-1")):
        assert getattr(client, method)(path).status_code == 302, path
    resp = client.post("/api/tickets", json={"summary": "x"})
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert client.get("/api/tickets").status_code == 401


def test_machine_endpoints_stay_outside_the_login(public):
    _, client = public
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    with client.get("/desk-static/desk.css") as css:
        assert css.status_code == 200
    assert client.get("/login").status_code == 200


def test_wrong_credentials_get_401(public):
    _, client = public
    assert client.get("/api/tickets", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/", headers=_basic("alice", "nope")).status_code == 401
    assert client.get("/", headers={"Authorization": "Basic !!!"}).status_code == 401


def test_the_admin_token_and_desk_users_are_let_in(public):
    _, client = public
    resp = client.post("/api/tickets", json={"summary": "x"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 201
    assert client.get("/api/tickets", headers=_basic("alice", "alice-pw-123")).status_code == 200
    assert client.get("/", headers=_basic("ops", TOKEN)).status_code == 200


def test_the_login_form_logs_in_and_the_answer_carries_the_login_name(public):
    svc, client = public
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()  # with no adapters configured, the first step is a question
    with svc.store.tx() as s:
        prompt = s.query(Prompt).one()
        option = prompt.options[0][0]
    token = csrf(client, "/login")
    bad = client.post("/login", data={"csrf_token": token, "name": "alice", "password": "wrong"})
    assert bad.status_code == 401 and "Wrong name or password" in bad.get_data(as_text=True)
    resp = client.post(
        "/login", data={"csrf_token": token, "name": "alice", "password": "alice-pw-123", "next": "/prompts"}
    )
    assert resp.status_code == 303 and resp.headers["Location"] == "/prompts"
    page = client.get("/prompts").get_data(as_text=True)
    assert 'name="name"' not in page and "alice" in page
    client.post(
        f"/prompts/{prompt.id}/answer",
        data={"csrf_token": csrf(client, "/prompts"), "answer": option, "name": "mallory"},
    )
    with svc.store.tx() as s:
        assert s.get(Prompt, prompt.id).answered_by == "alice"


def test_forms_without_the_csrf_token_are_refused(desk):
    svc, client = desk
    csrf(client)  # the session has a token; the posts below do not carry it
    resp = client.post("/tickets", data={"summary": "forged"})
    assert resp.status_code == 400 and "security token" in resp.get_data(as_text=True)
    assert client.post("/tickets", data={"summary": "forged", "csrf_token": "guess"}).status_code == 400
    assert client.post("/api/tickets", json={"summary": "via the API, no cookie form"}).status_code == 201
    with svc.store.tx() as s:
        assert [t.summary for t in s.query(Ticket)] == ["via the API, no cookie form"]


def test_a_public_bind_without_any_credentials_does_not_start(tmp_path, make_services):
    settings = Settings(data_dir=tmp_path / "data", host="0.0.0.0")
    with pytest.raises(SettingsError, match="CONNBOT_ADMIN_TOKEN or CONNBOT_DESK_USERS"):
        create_app(settings, make_services(settings=settings))


def test_a_malformed_desk_user_is_a_settings_error(tmp_path, make_services, monkeypatch):
    monkeypatch.setenv("CONNBOT_DESK_USERS", "alice:plaintext")
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(SettingsError, match=r"CONNBOT_DESK_USERS.*'alice'") as err:
        create_app(settings, make_services(settings=settings))
    assert "plaintext" not in str(err.value)


def test_password_hashes_are_salted_and_checked():
    one, two = hash_password("pw-1234567", iterations=1000), hash_password("pw-1234567", iterations=1000)
    assert one != two and one.startswith("pbkdf2_sha256$1000$")
    assert check_password("pw-1234567", one) and not check_password("pw-1234568", one)


def test_the_login_page_does_not_tell_anonymous_visitors_how_many_prompts_are_open(public):
    svc, client = public
    intake.file_desk_ticket(svc.context, "Alice can't connect", "", "", "1001")
    svc.queue.run_pending()  # one open question
    assert 'id="open-prompts"' not in client.get("/login").get_data(as_text=True)
    page = client.get("/prompts", headers=_basic("alice", "alice-pw-123")).get_data(as_text=True)
    assert '<span class="badge" id="open-prompts">1</span>' in page
