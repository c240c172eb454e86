"""SIP stand-ins on loopback UDP: one port per simulated PBX, all served by one thread.

A port that answers replies to every request (connbot's OPTIONS probe) with one status line,
echoing the request's dialog headers as a SIP stack does. A silent port is bound but never
answers, as a PBX behind a broken network path looks to a probe: no ICMP, no reply.
"""

from __future__ import annotations

import selectors
import socket
import threading

HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def reply(request: bytes, status: str) -> bytes:
    """`SIP/2.0 <status>` with the request's Via, From, To, Call-ID and CSeq."""
    head = [h for h in request.decode("utf-8", "replace").split("\r\n") if h.split(":", 1)[0] in HEADERS]
    return (
        "\r\n".join([f"SIP/2.0 {status}", *head, "Server: connbot-lab", "Content-Length: 0"]) + "\r\n\r\n"
    ).encode()


class SipPorts:
    """UDP sockets on 127.0.0.1, each answering with its status or (None) staying silent."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-sip", daemon=True)

    def open(self, status: str | None = "200 OK") -> int:
        """Bind a new port; returns its number. Call before `start`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        self._sockets.append(sock)
        if status is not None:
            self._selector.register(sock, selectors.EVENT_READ, status)
        return int(sock.getsockname()[1])

    def start(self) -> SipPorts:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data, addr = sock.recvfrom(65535)
                    sock.sendto(reply(data, key.data), addr)
                except OSError:
                    continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self._selector.close()
        for sock in self._sockets:
            sock.close()
