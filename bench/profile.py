"""Item 1's profile: where a signed Jira webhook's time goes, in process (Flask's test client, SQLite,
no worker), against the bare endpoint on the same client.

Wall time per request is measured without the profiler; the breakdown comes from a cProfile pass
(cumulative time of the named functions as a share of the whole, so the profiler's own overhead
cancels out of the shares).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import env_with

REQUESTS, WARMUP = 600, 100
# SQLite's own work: the driver's C methods, by name.
SQLITE = ("<method 'execute' of 'sqlite3.Cursor' objects>", "<method 'fetchone' of 'sqlite3.Cursor' objects>")
# (share name, part of the file's path, functions): cumulative time inside them, in a request's order.
# A signed webhook is answered by `SignedDeliveries` (bot/web/webhooks/jira.py), inside edge's WSGI
# middleware (bot/web/edge.py: the body read within its deadline, `BoundedBody._read`; the security
# headers, `SecurityHeaders`' start_response `start`), before Flask.
PARTS = [
    ("read the body within its deadline (edge.BoundedBody)", "bot/web/edge.py", ("_read",)),
    ("HMAC check of the body", "bot/web/webhooks/jira.py", ("signed",)),
    ("JSON parse and pydantic validation", "bot/web/webhooks/jira.py", ("parse_plain",)),
    ("store the event and wake a worker (intake.record)", "bot/runs/intake.py", ("record",)),
    ("of which SQLite's own work on the INSERT (an autocommit)", "", SQLITE),
    ("the security headers (edge.SecurityHeaders)", "bot/web/edge.py", ("start",)),
]


def _post_all(post: Callable[[int], int], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        assert post(i) in (200, 202)
    return (time.perf_counter() - t0) / n * 1000


def _shares(prof: cProfile.Profile) -> list[dict[str, Any]]:
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, func), (_, _, _, ct, _) in stats.items() if func == "_post")
    out = []
    for name, where, funcs in PARTS:
        ct = sum(v[3] for (file, _, fn), v in stats.items() if fn in funcs and where in file)
        out.append({"part": name, "share": round(ct / total, 3)})
    return out


def profile() -> dict[str, Any]:
    """ms per request for connbot and the bare endpoint, and connbot's breakdown."""
    from bench.bare import create_app as bare_app
    from bench.intake import SECRET, signed_bodies
    from bot.services import Services
    from bot.settings import load_settings
    from bot.web.app import create_app

    bodies = signed_bodies(REQUESTS + WARMUP)
    with tempfile.TemporaryDirectory(prefix="connbot-profile-") as tmp:
        env = env_with({"CONNBOT_DATA_DIR": tmp, "CONNBOT_JIRA_WEBHOOK_SECRET": SECRET})
        svc = Services.build(load_settings(env), environ=env)
        svc.store.upgrade()
        apps = {"connbot": create_app(services=svc).test_client(), "bare": bare_app().test_client()}
        try:

            def poster(who: str, offset: int) -> Callable[[int], int]:
                client = apps[who]

                def _post(i: int) -> int:
                    body, sig = bodies[(offset + i) % len(bodies)]
                    return client.post(
                        "/webhooks/jira",
                        data=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Hub-Signature": sig,
                            "X-Atlassian-Webhook-Identifier": f"profile-{who}-{offset}-{i}",
                        },
                    ).status_code

                return _post

            ms = {}
            for who in apps:
                _post_all(poster(who, 0), WARMUP)
                ms[who] = round(_post_all(poster(who, 1), REQUESTS), 3)
            prof = cProfile.Profile()
            post = poster("connbot", 2)
            prof.enable()
            _post_all(post, REQUESTS)
            prof.disable()
        finally:
            svc.close()
    return {
        "requests": REQUESTS,
        "connbot_ms": ms["connbot"],
        "bare_ms": ms["bare"],
        "ratio": round(ms["bare"] / ms["connbot"], 3),
        "parts": _shares(prof),
    }


if __name__ == "__main__":
    print(json.dumps(profile(), indent=1))
