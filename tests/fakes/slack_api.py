"""Slack for the tests: the Web API simulator (simulators/slack.py) as a fixture, signed requests to
/slack/events and payloads built from Slack's own examples (bolt-python, MIT)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from simulators.slack import CHANNEL, SlackWebApi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-connbot-test"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def slack_api() -> Iterator[SlackWebApi]:
    stub = SlackWebApi().start()
    yield stub
    stub.stop()


class InlineExecutor(Executor):
    """Runs bolt's after-ack work in the request thread, so a test sees its result on return."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future, as a pool would
            future.set_exception(exc)
        return future


def signed(body: str | bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a request signed as Slack signs them: over the raw bytes of the body (a text body
    is sent as UTF-8)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body.encode() if isinstance(body, str) else body
    sig = hmac.new(secret.encode(), b"v0:%s:%s" % (ts.encode(), raw), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def form(payload: dict[str, Any]) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def click(
    prompt_id: str,
    action_id: str,
    user: str = "W111",
    channel: str = CHANNEL,
    message_ts: str = "1700000000.000001",
    action_ts: str = "1596530385.194939",
) -> dict[str, Any]:
    """A block_actions payload (Slack's example) for a click on one of a prompt's buttons."""
    body = fixture("block_actions.button.json")
    body["user"]["id"] = user
    body["container"].update(message_ts=message_ts, channel_id=channel, is_ephemeral=False)
    body["channel"]["id"] = channel
    body["actions"][0].update(action_id=action_id, value=prompt_id, block_id="answers0", action_ts=action_ts)
    return body


def submission(prompt_id: str, choice: str, text: str | None, user: str = "W111") -> dict[str, Any]:
    """A view_submission payload (Slack's example) for the "more detail" form."""
    body = fixture("view_submission.json")
    body["user"]["id"] = user
    body["view"].update(
        callback_id="connbot_modal",
        private_metadata=prompt_id,
        state={
            "values": {
                "choice": {"choice": {"type": "static_select", "selected_option": {"value": choice}}},
                "text": {"text": {"type": "plain_text_input", "value": text}},
            }
        },
    )
    return body


@dataclass
class SlackWorld:
    """connbot with Slack as its prompt channel, pointed at the stub, with a clock the test moves."""

    svc: Any
    api: SlackWebApi
    web: Any
    now: Any

    def send(self, payload: dict[str, Any], **signing: Any) -> Any:
        """POST a signed interaction to /slack/events."""
        body = form(payload)
        return self.web.post("/slack/events", data=body, headers=signed(body, **signing))

    def work(self) -> None:
        """Let the worker do everything that is due now."""
        self.svc.queue.run_pending()

    def open_prompt(self) -> Any:
        from sqlalchemy import select

        from bot.state.models import Prompt

        with self.svc.store.tx() as s:
            return s.scalars(select(Prompt).where(Prompt.state == "open")).one()

    def answer(self, choice: str, user: str = "W111") -> Any:
        """Click `choice` on the open prompt's message and let the run go on."""
        prompt = self.open_prompt()
        resp = self.send(
            click(
                prompt.id,
                f"connbot_answer:{choice}",
                user=user,
                message_ts=prompt.channel_refs["slack"]["ts"],
                action_ts=f"{time.time():.6f}",
            )
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        self.work()
        return prompt


@pytest.fixture
def make_slack(make_services: Any, slack_api: SlackWebApi) -> Any:
    """Build a SlackWorld: `make_slack(registry, **slack_settings)`."""
    import datetime as dt

    from bot.web.app import create_app
    from integrations.slack.channel import SlackChannel
    from integrations.slack.settings import SlackSettings

    def make(registry: Any, **overrides: Any) -> SlackWorld:
        settings = SlackSettings(
            **{
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": slack_api.url,
                "channel": CHANNEL,
                "group_l1": "S0LEVEL1",
                **overrides,
            }
        )
        svc = make_services(registry=registry, channels=[SlackChannel(settings, executor=InlineExecutor())])
        now = [dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)]
        svc.context.clock = lambda: now[0]
        return SlackWorld(svc=svc, api=slack_api, web=create_app(services=svc).test_client(), now=now)

    return make
