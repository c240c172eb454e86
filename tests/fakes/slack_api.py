"""A stub Slack Web API on loopback (slack_sdk is urllib-based, so `responses` cannot see it), in the
manner of bolt-python's tests/mock_web_api_server: it records every call and answers with the
response shapes of tests/fixtures/slack/web-api/ (from java-slack-sdk's samples, MIT). Also: signed
requests to /slack/events and payloads built from Slack's own examples (bolt-python, MIT)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "slack"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-connbot-test"
CHANNEL = "C0PROMPTS"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class SlackApiStub:
    """Answers `POST|GET /api/<method>`. `fail_next` queues error answers for a method."""

    calls: list[Call] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = field(default_factory=dict)
    held: dict[str, threading.Event] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # asked on each call with nothing queued: an error answer, "drop" (done, answer lost) or None
    fault: Callable[[str], tuple[int, dict[str, str], dict[str, Any]] | str | None] | None = None

    def __post_init__(self) -> None:
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._answer(self)

            def do_POST(self) -> None:
                stub._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/"

    def start(self) -> SlackApiStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(
        self,
        method: str,
        status: int = 429,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.failures.setdefault(method, []).append(
            (
                status,
                headers if headers is not None else {"Retry-After": "0"},
                body or {"ok": False, "error": "ratelimited"},
            )
        )

    def lose_next(self, method: str, times: int = 1) -> None:
        """The next calls to `method` are carried out, but the connection drops before the answer."""
        self.lost[method] = self.lost.get(method, 0) + times

    def posts(self) -> list[dict[str, Any]]:
        """Messages posted (chat.postMessage answered ok), answers lost or not."""
        return list(self.messages)

    def hold(self, method: str) -> threading.Event:
        """Calls to `method` wait until the returned event is set: Slack being slow, without sleeping."""
        return self.held.setdefault(method, threading.Event())

    def to(self, method: str) -> list[dict[str, Any]]:
        """The arguments of every call to `method`, in order."""
        return [c.args for c in self.calls if c.method == method]

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        method = parsed.path.rsplit("/", 1)[-1]
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode()
        if "json" in (h.headers.get("Content-Type") or ""):
            args = json.loads(raw)
        else:
            args = {k: v[0] for k, v in urllib.parse.parse_qs(raw or parsed.query).items()}
        for key in ("blocks", "view", "metadata"):  # form-encoded calls carry these as JSON strings
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        auth = h.headers.get("Authorization") or ""
        if method in self.held:
            self.held[method].wait(timeout=5)
        with self._lock:
            self.calls.append(Call(method, args, auth.removeprefix("Bearer ") or None))
            failure = self.failures.get(method, []) and self.failures[method].pop(0)
            injected = None if failure or self.fault is None else self.fault(method)
            failure = failure or (injected if isinstance(injected, tuple) else None)
            status, headers, body = failure or (200, {}, self._success(method, args))
            lose = not failure and (self.lost.get(method, 0) > 0 or injected == "drop")
            if lose and injected != "drop":
                self.lost[method] -= 1
        if lose:  # done, but the caller never hears of it
            h.close_connection = True
            return
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel") == "C0MISSING":
            return {"ok": False, "error": "channel_not_found"}
        if method.startswith("conversations."):
            body: dict[str, Any] = {}
        else:
            try:
                body = copy.deepcopy(fixture(f"web-api/{method}.json"))
            except FileNotFoundError:
                return {"ok": False, "error": "unknown_method"}
        body = {
            k: v
            for k, v in body.items()
            if k not in {"error", "needed", "provided", "warning", "deprecated_argument"}
        }
        body["ok"] = True
        if "ts" in body:
            body["ts"] = args.get("ts") or f"1700000000.{next(self._ts):06d}"
            body["channel"] = args.get("channel", CHANNEL)
        if method == "chat.postMessage" and body.get("ok"):
            self.messages.append(
                {
                    "channel": body["channel"],
                    "ts": body["ts"],
                    "thread_ts": args.get("thread_ts"),
                    "text": args.get("text"),
                    "blocks": args.get("blocks"),
                    "metadata": args.get("metadata"),
                }
            )
        if method in ("conversations.history", "conversations.replies"):
            thread = args.get("ts") if method == "conversations.replies" else None
            found = [
                m for m in self.messages if m["channel"] == args.get("channel") and m["thread_ts"] == thread
            ]
            return {
                "ok": True,
                "messages": [{k: v for k, v in m.items() if v is not None} for m in reversed(found)],
                "has_more": False,
            }
        if method == "usergroups.users.list":
            body["users"] = self.groups.get(args.get("usergroup", ""), [])
        if method == "views.open":
            body["view"].update(
                id="V0DETAIL", type="modal", private_metadata=args["view"]["private_metadata"]
            )
        return body


@pytest.fixture
def slack_api() -> Iterator[SlackApiStub]:
    stub = SlackApiStub().start()
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


def signed(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a request signed as Slack signs them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
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
    api: SlackApiStub
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
def make_slack(make_services: Any, slack_api: SlackApiStub) -> Any:
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
