"""Serving a simulator's WSGI application on loopback, with a port that really opens and closes.

A stopped `Server` has closed its listening socket: a client's connect is refused, as it is when
the real system's process is down. Started again, it listens on the same port.
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

HOST = "127.0.0.1"


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """A simulator's requests are not connbot's; keep them out of its log."""


class Server:
    """`app` served by a threaded HTTP server on 127.0.0.1 (port 0: any free port, kept across restarts)."""

    def __init__(self, app: Any, port: int = 0):
        self.app = app
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Server:
        if self._server is None:
            self._server = make_server(HOST, self.port, self.app, threaded=True, request_handler=_Quiet)
            self.port = self._server.server_port
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"simulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: connections to the port are refused from now on."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
