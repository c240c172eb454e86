"""Logins on a desk reachable beyond loopback. Wrong passwords are throttled per name and per client
(429 with Retry-After, and the password is not even hashed then); a name that is no desk user costs
the same hashing as one that is, so timing does not tell names apart; logging out ends the login on
the server, so a copy of the old cookie is refused; every answer carries the security headers."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from bot.settings import Settings
from bot.web.app import create_app
from bot.web.auth import hash_password
from tests.fakes.desk import csrf

TOKEN = "a-long-enough-admin-token-0f3a9"
ROUNDS = 20_000


@pytest.fixture
def public(tmp_path, make_services, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONNBOT_DESK_USERS", f"alice:{hash_password('alice-pw-123', iterations=ROUNDS)}")
    settings = Settings(data_dir=tmp_path / "data", host="0.0.0.0", admin_token=TOKEN)
    return create_app(settings, make_services(settings=settings)).test_client()


def _login(client: Any, name: str, password: str, addr: str = "10.0.0.1") -> Any:
    token = csrf(client, "/login")
    return client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": password},
        environ_base={"REMOTE_ADDR": addr},
    )


def _basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_wrong_passwords_are_throttled_per_name(public) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert _login(public, "alice", "wrong").status_code == 401
    resp = _login(public, "alice", "alice-pw-123")  # even the right password, while throttled
    assert resp.status_code == 429
    api = public.get("/api/runs", headers=_basic("alice", "alice-pw-123"))
    assert api.status_code == 429 and int(api.headers["Retry-After"]) > 0
    assert "try again" in api.get_json()["message"]
    assert _login(public, "bob", "x").status_code == 401  # another name is not throttled by alice's


def test_wrong_passwords_are_throttled_per_client(public) -> None:  # type: ignore[no-untyped-def]
    for i in range(20):
        assert _login(public, f"user{i}", "wrong", addr="10.9.9.9").status_code == 401
    assert _login(public, "alice", "alice-pw-123", addr="10.9.9.9").status_code == 429
    assert _login(public, "alice", "alice-pw-123", addr="10.1.1.1").status_code == 303


def test_a_throttled_login_hashes_nothing(public, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        _login(public, "alice", "wrong")
    hashed = _count_hashing(monkeypatch)
    assert _login(public, "alice", "wrong").status_code == 429
    assert hashed == []


def test_an_unknown_name_costs_the_same_hashing_as_a_known_one(public, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    hashed = _count_hashing(monkeypatch)
    _login(public, "alice", "wrong")
    known = list(hashed)
    hashed.clear()
    _login(public, "nobody-by-this-name", "wrong")
    assert known == hashed == [ROUNDS]


def _count_hashing(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """The rounds of every PBKDF2 computation from now on (the standard library's, watched)."""
    rounds: list[int] = []
    real = hashlib.pbkdf2_hmac

    def watched(name: str, password: bytes, salt: bytes, iterations: int, *rest: Any) -> bytes:
        rounds.append(iterations)
        return real(name, password, salt, iterations, *rest)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", watched)
    return rounds


def test_logging_out_ends_the_login_on_the_server(public) -> None:  # type: ignore[no-untyped-def]
    assert _login(public, "alice", "alice-pw-123").status_code == 303
    assert public.get("/prompts").status_code == 200
    stolen = public.get_cookie("connbot_desk").value
    assert public.post("/logout", data={"csrf_token": csrf(public, "/prompts")}).status_code == 303
    public.set_cookie("connbot_desk", stolen)  # a copy of the cookie, taken before the logout
    resp = public.get("/prompts")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")


def test_every_answer_carries_the_security_headers(public) -> None:  # type: ignore[no-untyped-def]
    for path in ("/login", "/healthz", "/api/runs", "/desk-static/desk.css", "/webhooks/jira"):
        resp = public.post(path, data=b"{}") if path.startswith("/webhooks/") else public.get(path)
        headers = resp.headers
        resp.close()
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
