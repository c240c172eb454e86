"""Network probes that need no root: DNS, TCP connect, TLS handshake, SIP OPTIONS.

Each probe returns a `Probe` whose `outcome` is a `PathOutcome` value; socket, ssl and dnspython
errors are translated here and nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import secrets
import socket
import ssl
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.resolver
from cryptography import x509

from integrations.net.models import PathOutcome as P

TLS_UNTRUSTED_CODES = {18, 19, 20, 21, 2, 27}
UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


@dataclass
class Probe:
    probe: str
    target: str
    outcome: str
    detail: str = ""
    ms: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome == P.OK.value

    @property
    def refused(self) -> bool:
        """The host answered that nothing listens on the port: TCP refused the connection, or UDP got
        ICMP port unreachable (outcome `unreachable`, which otherwise means no route to the host)."""
        return self.outcome == P.TCP_REFUSED.value or self.data.get("icmp") == "port_unreachable"

    def evidence(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(host: str, port: int) -> Probe:
    start = time.perf_counter()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return Probe("dns", host, P.DNS_FAILURE.value, str(exc), _ms(start))
    addrs = sorted({str(i[4][0]) for i in infos})
    return Probe("dns", host, P.OK.value, ", ".join(addrs), _ms(start), {"addresses": addrs})


def srv(domain: str, timeout: float) -> Probe:
    """SIP SRV records; none is normal (clients fall back to A/AAAA), so this never fails the path."""
    try:
        resolver = dns.resolver.Resolver()
    except dns.resolver.NoResolverConfiguration as exc:
        return Probe("dns_srv", domain, P.OK.value, f"SRV not checked: {exc}")
    resolver.lifetime = timeout
    found: dict[str, list[str]] = {}
    notes = []
    for name in (f"_sip._udp.{domain}", f"_sip._tcp.{domain}", f"_sips._tcp.{domain}"):
        try:
            answer = resolver.resolve(name, "SRV")
            found[name] = [f"{r.priority} {r.weight} {r.port} {r.target}" for r in answer]
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
            notes.append(f"{name}: {type(exc).__name__}")
    return Probe(
        "dns_srv",
        domain,
        P.OK.value,
        "; ".join(notes) or (f"{len(found)} SRV names" if found else "no SRV records"),
        data={"srv": found},
    )


def _connect_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return P.TCP_REFUSED.value
    if isinstance(exc, TimeoutError):
        return P.TCP_TIMEOUT.value
    if exc.errno in UNREACHABLE_ERRNOS:
        return P.UNREACHABLE.value
    return P.TCP_REFUSED.value if isinstance(exc, ConnectionError) else P.UNREACHABLE.value


def tcp_connect(host: str, port: int, timeout: float, label: str = "tcp") -> Probe:
    start = time.perf_counter()
    target = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return Probe(label, target, P.OK.value, "connected", _ms(start))
    except OSError as exc:
        return Probe(label, target, _connect_error(exc), str(exc) or type(exc).__name__, _ms(start))


def _not_after(der: bytes | None) -> datetime | None:
    return x509.load_der_x509_certificate(der).not_valid_after_utc if der else None


def tls_check(
    host: str, port: int, timeout: float, cafile: str | None = None, server_name: str | None = None
) -> Probe:
    """A verified handshake.

    On a verification failure the certificate is read again, unverified, for its expiry.
    """
    target = f"{host}:{port}"
    name = server_name or host
    ctx = ssl.create_default_context(cafile=cafile)
    start = time.perf_counter()
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            expires = _not_after(tls.getpeercert(binary_form=True))
            data = {"version": tls.version(), **_expiry(expires)}
            return Probe(
                "tls",
                target,
                P.OK.value,
                f"{tls.version()}, certificate valid for {data['days_left']} more days",
                _ms(start),
                data,
            )
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
        outcome = (
            P.TLS_EXPIRED
            if code == 10
            else P.TLS_HOSTNAME_MISMATCH
            if code in (62, 64)
            else P.TLS_UNTRUSTED
            if code in TLS_UNTRUSTED_CODES
            else P.TLS_HANDSHAKE_FAILED
        ).value
        return Probe(
            "tls",
            target,
            outcome,
            f"{exc.verify_message} (verify code {code})",
            _ms(start),
            _expiry(_unverified_cert(host, port, timeout, name)),
        )
    except ssl.SSLError as exc:
        detail = exc.reason or str(exc)
        hint = " (the port speaks plain text)" if exc.reason == "WRONG_VERSION_NUMBER" else ""
        return Probe("tls", target, P.TLS_HANDSHAKE_FAILED.value, f"{detail}{hint}", _ms(start))
    except OSError as exc:
        if isinstance(exc, ConnectionResetError | BrokenPipeError) or exc.errno == errno.ECONNRESET:
            return Probe(
                "tls",
                target,
                P.TLS_HANDSHAKE_FAILED.value,
                f"connection reset during the handshake: {exc}",
                _ms(start),
            )
        return Probe("tls", target, _connect_error(exc), str(exc) or type(exc).__name__, _ms(start))


def _unverified_cert(host: str, port: int, timeout: float, name: str) -> datetime | None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            return _not_after(tls.getpeercert(binary_form=True))
    except (OSError, ValueError):
        return None


def _expiry(not_after: datetime | None) -> dict[str, Any]:
    if not_after is None:
        return {}
    return {"not_after": not_after.isoformat(), "days_left": (not_after - datetime.now(UTC)).days}


def options_message(host: str, port: int, transport: str, local: tuple[str, int]) -> tuple[bytes, str]:
    """An OPTIONS request with fresh branch, tag and Call-ID; returns (bytes, call_id)."""
    call_id = secrets.token_hex(12)
    lhost, lport = local[0], local[1]
    lines = [
        f"OPTIONS sip:{host}:{port} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {lhost}:{lport};branch=z9hG4bK{secrets.token_hex(8)};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{lhost}>;tag={secrets.token_hex(6)}",
        f"To: <sip:{host}:{port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:probe@{lhost}:{lport}>",
        "Accept: application/sdp",
        "User-Agent: connbot-probe/0.1",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), call_id


def _status_line(data: bytes) -> str | None:
    first = data.split(b"\r\n", 1)[0].decode("utf-8", "replace").strip()
    return first if first.startswith("SIP/2.0 ") else None


def sip_options(
    host: str,
    port: int,
    transport: str,
    timeout: float,
    *,
    cafile: str | None = None,
    server_name: str | None = None,
) -> Probe:
    """One OPTIONS; any SIP status line means the SIP stack answers (401 is normal for Asterisk)."""
    label = f"sip_options_{transport}"
    target = f"{host}:{port}/{transport}"
    start = time.perf_counter()
    try:
        if transport == "udp":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.connect((host, port))
                msg, call_id = options_message(host, port, "udp", sock.getsockname())
                start = time.perf_counter()
                sock.send(msg)
                while True:
                    data = sock.recv(65535)
                    if call_id.encode() in data or b"Call-ID" not in data:
                        break
        else:
            with contextlib.ExitStack() as stack:
                conn: socket.socket = stack.enter_context(
                    socket.create_connection((host, port), timeout=timeout)
                )
                if transport == "tls":
                    conn = stack.enter_context(
                        ssl.create_default_context(cafile=cafile).wrap_socket(
                            conn, server_hostname=server_name or host
                        )
                    )
                msg, _ = options_message(host, port, transport, conn.getsockname())
                start = time.perf_counter()
                conn.sendall(msg)
                data = conn.recv(65535)
    except TimeoutError:
        return Probe(label, target, P.SIP_NO_RESPONSE.value, f"no answer within {timeout:g} s", None)
    except ConnectionRefusedError:
        if transport == "udp":
            return Probe(
                label,
                target,
                P.UNREACHABLE.value,
                "ICMP port unreachable: nothing listens on UDP",
                data={"icmp": "port_unreachable"},
            )
        return Probe(label, target, P.TCP_REFUSED.value, "connection refused")
    except ssl.SSLError as exc:
        return Probe(label, target, P.TLS_HANDSHAKE_FAILED.value, str(exc.reason or exc), None)
    except OSError as exc:
        return Probe(label, target, _connect_error(exc), str(exc) or type(exc).__name__, None)
    rtt = _ms(start)
    status = _status_line(data)
    if status is None:
        return Probe(label, target, P.SIP_NO_RESPONSE.value, f"answer is not SIP: {data[:40]!r}", rtt)
    return Probe(label, target, P.OK.value, status, rtt, {"status_line": status})
