"""Slack's Web API on loopback (slack_sdk is urllib-based, so `responses` cannot see it), in the
manner of bolt-python's tests/mock_web_api_server: it records every call and answers with the
response shapes of simulators/slack_web_api/ (from java-slack-sdk's samples, MIT). A real HTTP
server, so that a lost answer (the connection closed before the reply) is what a client sees.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ANSWERS = Path(__file__).resolve().parent / "slack_web_api"
CHANNEL = "C0PROMPTS"
RESPONSES = "/commands/"  # where response_urls point (hooks.slack.com/commands/... at Slack)


def _answer(method: str) -> dict[str, Any]:
    """Slack's sample answer of `method` (FileNotFoundError: a method this simulator does not know)."""
    if not method.replace(".", "").isalnum():
        raise FileNotFoundError(method)
    answer: dict[str, Any] = json.loads((ANSWERS / f"{method}.json").read_text(encoding="utf-8"))
    return answer


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class SlackWebApi:
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

    def response_url(self, ref: str = "1") -> str:
        """A response_url as Slack hands one out with a slash command or a shortcut."""
        return f"http://127.0.0.1:{self.server.server_address[1]}{RESPONSES}T0TEAM/{ref}/secret"

    def start(self) -> SlackWebApi:
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
        # a slash command's or a shortcut's response_url (`response_url()`), else a Web API method
        method = "response_url" if parsed.path.startswith(RESPONSES) else parsed.path.rsplit("/", 1)[-1]
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
            queued = self.failures.get(method)
            failure = queued.pop(0) if queued else None
            injected = None if failure or self.fault is None else self.fault(method)
            if failure is None and isinstance(injected, tuple):
                failure = injected
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
        if method == "response_url":
            return {"ok": True}
        if args.get("channel") == "C0MISSING":
            return {"ok": False, "error": "channel_not_found"}
        if method.startswith("conversations."):
            body: dict[str, Any] = {}
        else:
            try:
                body = copy.deepcopy(_answer(method))
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
        if method == "views.publish":
            body["view"].update(id="V0HOME", type="home", blocks=args["view"].get("blocks", []))
        if method == "views.open":
            body["view"].update(
                id="V0DETAIL", type="modal", private_metadata=args["view"]["private_metadata"]
            )
        return body
