"""A PBX's SIP port on loopback (UDP, TCP or TLS), answering OPTIONS as a SIP stack does, or
silent, or closed.

An open port replies to every request with one status line, echoing the request's dialog headers
(Via, From, To, Call-ID, CSeq); over TCP and TLS one request per connection, the way a probe
sends it. A silent port is bound but never answers, as a PBX behind a broken network path looks
to a probe: no ICMP, no reply. A lossy path (`answer_every` n) answers one request in n. A closed
port is not bound at all: a connected UDP socket sending to it gets ICMP port unreachable
(`ConnectionRefusedError`), as a probe of a stopped Asterisk or of one whose res_pjsip is not
running does; a TCP connect is refused.
"""

from __future__ import annotations

import socket
import ssl
import threading

from simulators.serve import HOST

HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def reply(request: bytes, status: str) -> bytes:
    """`SIP/2.0 <status>` with the request's Via, From, To, Call-ID and CSeq."""
    head = [h for h in request.decode("utf-8", "replace").split("\r\n") if h.split(":", 1)[0] in HEADERS]
    return (
        "\r\n".join([f"SIP/2.0 {status}", *head, "Server: Asterisk PBX 22.5.0", "Content-Length: 0"])
        + "\r\n\r\n"
    ).encode()


class SipPort:
    """One port on 127.0.0.1 answering with `status` (None: silent) while open, over `transport`
    (udp, tcp, or tls with the server context `tls`); `seen` counts the requests it got."""

    def __init__(
        self,
        status: str | None = "200 OK",
        port: int = 0,
        transport: str = "udp",
        tls: ssl.SSLContext | None = None,
        answer_every: int = 1,
    ):
        self.status = status
        self.port = port
        self.transport, self.tls, self.answer_every = transport, tls, answer_every
        self.seen = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def open(self) -> bool:
        return self._sock is not None

    def start(self) -> SipPort:
        """Bind the port (the same number again after a `stop`) and answer on it."""
        if self._sock is None:
            udp = self.transport == "udp"
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
            # no SO_REUSEADDR: with it Linux may hand out a port another such socket holds
            sock.bind((HOST, self.port))
            sock.settimeout(0.05)
            if not udp:
                sock.listen(16)
            self.port = int(sock.getsockname()[1])
            self._sock, self._stop = sock, threading.Event()
            self._thread = threading.Thread(
                target=self._serve if udp else self._serve_streams,
                args=(sock, self._stop),
                name=f"sip-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def _answer(self, request: bytes) -> bytes | None:
        """The reply to one request, or None when this one goes unanswered."""
        self.seen += 1
        if self.status is None or (self.seen - 1) % self.answer_every:
            return None
        return reply(request, self.status)

    def _serve(self, sock: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = self._answer(data)
            if answer is not None:
                try:
                    sock.sendto(answer, addr)
                except OSError:
                    continue

    def _serve_streams(self, sock: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    stream = self.tls.wrap_socket(conn, server_side=True) if self.tls else conn
                    with stream:
                        data = stream.recv(65535)
                        answer = self._answer(data) if data else None
                        if answer is not None:
                            stream.sendall(answer)
                except OSError:  # ssl.SSLError is one: a client that does not speak TLS
                    continue

    def stop(self) -> None:
        """Unbind the port: a probe of it is refused (ICMP port unreachable) from now on."""
        sock, thread = self._sock, self._thread
        self._sock = self._thread = None
        self._stop.set()
        if thread is not None:
            thread.join(2)
        if sock is not None:
            sock.close()

    def __enter__(self) -> SipPort:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
