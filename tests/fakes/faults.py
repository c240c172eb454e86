"""Faults of the outside systems, injected in front of the wire fakes: on a seeded share of calls a
system answers 500, 502 or 503, 429 with `Retry-After`, times out or drops the connection, instead
of doing what was asked. A system can also be taken down altogether (`down`).

`Faults.rsps(system, rsps)` stands in for a `responses.RequestsMock` when a fake registers its
callbacks (FakeJira, FakeAri, app_backend), so every callback first asks the faults; the Slack stub asks
`Faults.slack`. Everything that happened, faults and waits, goes on one `timeline`, in order; a test
that controls the runner's clock puts it there too (`tick`), so that `at` tells when each fault was.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

KINDS = ("500", "502", "503", "429", "timeout", "drop")
# Answers that say "nothing was done": the only faults a call that must not be repeated gets, since
# after a 500, a timeout or a dropped connection nobody knows whether it was done.
NOTHING_DONE = ("503", "429")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass
class Faults:
    rate: float = 0.3
    seed: int = 7
    retry_after: int = 2
    down: set[str] = field(default_factory=set)
    # systems whose non-idempotent calls only get the faults that say nothing was done
    careful: set[str] = field(default_factory=set)
    timeline: list[tuple[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.randoms: dict[str, random.Random] = {}

    def _random(self, system: str) -> random.Random:
        """Each system its own seeded sequence, so one system's faults do not depend on another's calls."""
        return self.randoms.setdefault(system, random.Random(f"{self.seed}:{system}"))

    def pick(self, system: str, method: str = "GET") -> str | None:
        """The fault to answer this call with, if any (and note it on the timeline)."""
        if system in self.down:
            kind: str | None = "503"
        elif self._random(system).random() < self.rate:
            kinds = NOTHING_DONE if system in self.careful and method.upper() not in IDEMPOTENT else KINDS
            kind = self._random(system).choice(kinds)
        else:
            kind = None
        if kind:
            self.timeline.append(("fault", (system, kind)))
        return kind

    def sleep(self, seconds: float) -> None:
        """A client's wait between attempts: recorded, not slept."""
        self.timeline.append(("sleep", seconds))

    def tick(self, now: float) -> None:
        """The runner's clock reads `now` (seconds) from here on."""
        self.timeline.append(("clock", now))

    def at(self, system: str) -> list[float]:
        """The runner's clock at each fault `system` answered (0 before the first `tick`)."""
        now, times = 0.0, []
        for what, v in self.timeline:
            if what == "clock":
                now = v
            elif what == "fault" and v[0] == system:
                times.append(now)
        return times

    def injected(self, system: str | None = None) -> list[str]:
        return [k for what, v in self.timeline if what == "fault" for s, k in [v] if system in (None, s)]

    def waits_after_429(self) -> list[float]:
        """The wait a client took right after each 429 it retried."""
        return [
            self.timeline[i + 1][1]
            for i, (what, v) in enumerate(self.timeline[:-1])
            if what == "fault" and v[1] == "429" and self.timeline[i + 1][0] == "sleep"
        ]

    def answer(self, kind: str) -> tuple[int, dict[str, str], str]:
        """A requests-side answer for a fault that is an answer; raises for timeouts and drops."""
        if kind == "timeout":
            raise requests.ReadTimeout("read timed out (injected)")
        if kind == "drop":
            raise requests.ConnectionError("connection reset by peer (injected)")
        headers = {"Retry-After": str(self.retry_after)} if kind == "429" else {}
        return (
            int(kind),
            {"Content-Type": "text/html", **headers},
            f"<html><body>{kind} from the proxy</body></html>",
        )

    def wrap(self, system: str, callback: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def faulty(request: Any) -> Any:
            kind = self.pick(system, request.method)
            return self.answer(kind) if kind else callback(request)

        return faulty

    def rsps(self, system: str, rsps: Any) -> _FaultyMock:
        return _FaultyMock(self, system, rsps)

    def slack(self, method: str) -> tuple[int, dict[str, str], dict[str, Any]] | str | None:
        """For the Slack stub: an error answer, "drop" (done, but the answer is lost) or None."""
        kind = self.pick("slack", "POST" if method.startswith("chat.") else "GET")
        if kind in (None, "drop"):
            return kind
        if kind == "timeout":  # slack_sdk sees a read timeout and a reset alike (an OSError)
            return "drop"
        status = int(kind)
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        return status, headers, {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}


class _FaultyMock:
    """What a wire fake registers on goes through the faults first."""

    def __init__(self, faults: Faults, system: str, rsps: Any):
        self.faults, self.system, self.rsps = faults, system, rsps

    def add_callback(self, method: str, url: Any, callback: Callable[[Any], Any], **kwargs: Any) -> None:
        self.rsps.add_callback(method, url, callback=self.faults.wrap(self.system, callback), **kwargs)
