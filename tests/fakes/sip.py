"""A SIP stack on loopback UDP that answers every request (OPTIONS) with one status line."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sip_responder(status: str = "200 OK") -> Iterator[int]:
    """Answer each request with `SIP/2.0 <status>`, echoing its dialog headers; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            head = [h for h in data.decode("utf-8", "replace").split("\r\n") if h.split(":", 1)[0] in ("Via", "From", "To", "Call-ID", "CSeq")]
            sock.sendto(("\r\n".join([f"SIP/2.0 {status}", *head, "Content-Length: 0"]) + "\r\n\r\n").encode(), addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        sock.close()
