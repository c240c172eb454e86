"""A SIP stack on loopback UDP that answers every request (OPTIONS) with one status line (the lab's)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.lab.sip import SipPorts


@contextmanager
def sip_responder(status: str = "200 OK") -> Iterator[int]:
    """Answer each request with `SIP/2.0 <status>`, echoing its dialog headers; yields the port."""
    ports = SipPorts()
    port = ports.open(status)
    ports.start()
    try:
        yield port
    finally:
        ports.stop()
