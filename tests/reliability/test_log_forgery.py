"""Log forgery: nothing from a request that failed authentication reaches the log raw. Each refusal
is one short line of connbot's own (the peer's address, the reason); the body, forged log lines
and terminal escape codes in it, and its size never show, whatever logger is listening."""

from __future__ import annotations

import logging
import time

import pytest

from tests.fakes.adapters import scripted_registry
from tests.fakes.slack_api import signed
from tests.reliability.conftest import assert_json_error

FORGED = "\n2026-01-01 00:00:00 ERROR connbot: database wiped by admin\x1b[2J\x1b[31mFORGED\x1b[0m\r"


BODY = "payload=" + FORGED + "x" * (900 * 1024)  # close to the 1 MiB body limit
JUNK = "\x1b[31mFORGED\x1b[0m"


@pytest.mark.parametrize(
    "headers",
    [
        {},  # unsigned
        signed("something else"),  # signed, but another body
        signed(BODY, timestamp=int(time.time()) - 3600),  # the right signature, an hour old
        {"X-Slack-Request-Timestamp": "12" + JUNK, "X-Slack-Signature": JUNK},  # junk headers
    ],
    ids=["unsigned", "other-body", "stale", "junk-headers"],
)
def test_a_refused_slack_request_is_one_bounded_line(make_slack, caplog, headers) -> None:  # type: ignore[no-untyped-def]
    world = make_slack(scripted_registry({}, systems=()))
    caplog.set_level(logging.DEBUG)  # every logger, slack_bolt's included
    resp = world.web.post(
        "/slack/events",
        data=BODY.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert_json_error(resp, 401)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, [line[:200] for line in lines]
    assert len(lines[0]) < 200 and "refused" in lines[0]
    assert not any(bad in lines[0] for bad in ("FORGED", "\x1b", "\n", "\r", "database wiped"))
