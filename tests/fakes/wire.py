"""A simulator (a WSGI application of `simulators/`) mounted at a URL of `responses`, so that
`requests` calls reach the same code the lab serves on loopback, without a socket.

`refused()` true makes every call fail as a closed port does; `faults` (a path substring mapped to
an answer `(status, headers, body)` or an exception to raise) injects what a test needs beyond the
simulator's own behaviour.
"""

from __future__ import annotations

import errno
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import responses
from werkzeug.test import Client

METHODS = (responses.GET, responses.POST, responses.PUT, responses.PATCH, responses.DELETE)


def mount(
    rsps: responses.RequestsMock,
    url: str,
    app: Any,
    refused: Callable[[], bool] = lambda: False,
    faults: dict[str, Any] | None = None,
    latency: float = 0.0,
) -> None:
    """Answer every request under `url` with `app`, each after `latency` seconds (a real system's
    round trip)."""
    prefix = urlsplit(url).path.rstrip("/")
    client = Client(app)

    def handle(req: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        time.sleep(latency)
        if refused():  # as requests raises it: the OS's ConnectionRefusedError inside
            raise requests.ConnectionError(
                ConnectionRefusedError(errno.ECONNREFUSED, f"Connection refused: {url}")
            )
        parts = urlsplit(req.url or "")
        for key, answer in (faults or {}).items():
            if key in parts.path:
                if isinstance(answer, BaseException):
                    raise answer
                status, headers, body = answer
                return status, headers, body.encode() if isinstance(body, str) else body
        body = req.body.encode() if isinstance(req.body, str) else req.body
        resp = client.open(
            parts.path[len(prefix) :] or "/",
            base_url=f"{parts.scheme}://{parts.netloc}{prefix}",
            query_string=parts.query,
            method=req.method or "GET",
            headers=dict(req.headers),
            data=body or b"",
        )
        headers = {k: v for k, v in resp.headers.items() if k.lower() != "content-length"}
        return resp.status_code, headers, resp.get_data()

    for method in METHODS:
        rsps.add_callback(method, re.compile(re.escape(url.rstrip("/")) + r"(/.*)?$"), callback=handle)
