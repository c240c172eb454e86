"""Jira at the wire for the tests: the Jira simulator mounted on `responses`, webhook fixtures and
signatures, and Jira settings in the environment."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import responses

from simulators import jira
from tests.fakes.wire import mount

URL = "https://example.atlassian.net"
# The account connbot's API token belongs to: GET /myself and the author of every comment it adds.
BOT_USER = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "connbot", "accountType": "atlassian"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jira"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeJira:
    """The Jira simulator (simulators/jira.py) mounted at `url` on a `responses.RequestsMock`:
    `issues` is the state, `searches` the JQL asked for."""

    def __init__(
        self,
        rsps: responses.RequestsMock,
        url: str = URL,
        search: list[dict[str, Any]] | None = None,
        latency: float = 0.0,
    ):
        self.url = url
        self.jira = jira.Jira(account=dict(BOT_USER), search_results=search or [])
        self.down = False  # True: every connection is refused, as while Jira restarts
        mount(rsps, url, jira.create(self.jira), refused=lambda: self.down, latency=latency)

    @property
    def issues(self) -> dict[str, jira.Issue]:
        return self.jira.issues

    @property
    def searches(self) -> list[str]:
        return self.jira.searches

    def issue(self, key: str) -> jira.Issue:
        return self.jira.issue(key)

    def comment_as(self, key: str, author: dict[str, Any], body: str) -> None:
        self.jira.comment_as(key, author, body)


def jira_env(**extra: str) -> dict[str, str]:
    """Cloud Jira settings as environment variables (plus `extra`, names without the CONNBOT_JIRA_ prefix)."""
    values = {
        "URL": URL,
        "EMAIL": "bot@example.com",
        "API_TOKEN": "api-token-not-real",
        "WEBHOOK_SECRET": "s3cret",
        "USER_FIELD": "customfield_10050",
        **extra,
    }
    return {f"CONNBOT_JIRA_{name}": value for name, value in values.items()}


def configure(monkeypatch: Any, **extra: str) -> None:
    """Set Cloud Jira settings (`jira_env`) in the environment."""
    for name, value in jira_env(**extra).items():
        monkeypatch.setenv(name, value)


def post(client: Any, payload: dict[str, Any], delivery: str, secret: str = "s3cret") -> Any:
    """Post a webhook delivery to connbot's receiver (a Flask test client) as Jira does: signed, with
    its identifier; returns the receiver's answer."""
    body = json.dumps(payload).encode()
    return client.post(
        "/webhooks/jira",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature": sign(body, secret),
            "X-Atlassian-Webhook-Identifier": delivery,
        },
    )


def deliver(svc: Any, payload: dict[str, Any], delivery: str, secret: str = "s3cret") -> Any:
    """`post` a delivery to a receiver of `svc`, then let the queue do its work."""
    from bot.web.app import create_app

    resp = post(create_app(services=svc).test_client(), payload, delivery, secret)
    svc.queue.run_pending()
    return resp


def lab_issue(key: str, scenario: str, n: int, user_field: str) -> dict[str, Any]:
    """A `jira:issue_created` payload about user `n` of a lab scenario's PBX (routed by the lab's
    `lab_scenario` field; the user's extension in `user_field`)."""
    from bot.lab.scenarios import SCENARIOS, storm_user

    payload = fixture("cloud_issue_created.json")
    payload["issue"]["key"] = key
    payload["issue"]["fields"].update(
        summary=f"User {n} cannot connect",
        description="The app cannot connect since this morning.",
        lab_scenario=scenario,
        **{user_field: storm_user(SCENARIOS[scenario], n)},
    )
    return payload
