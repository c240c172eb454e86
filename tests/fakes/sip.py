"""A SIP stack on loopback UDP that answers every request (OPTIONS) with one status line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from simulators.sip import SipPort


@contextmanager
def sip_responder(status: str = "200 OK") -> Iterator[int]:
    """Answer each request with `SIP/2.0 <status>`, echoing its dialog headers; yields the port."""
    with SipPort(status) as port:
        yield port.port
