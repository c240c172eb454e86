"""Outcomes of the network probes."""

from __future__ import annotations

from enum import StrEnum


class PathOutcome(StrEnum):
    OK = "ok"
    DNS_FAILURE = "dns_failure"
    TCP_REFUSED = "tcp_refused"
    TCP_TIMEOUT = "tcp_timeout"
    UNREACHABLE = "unreachable"
    TLS_EXPIRED = "tls_expired"
    TLS_UNTRUSTED = "tls_untrusted"
    TLS_HOSTNAME_MISMATCH = "tls_hostname_mismatch"
    TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
    SIP_NO_RESPONSE = "sip_no_response"
    DEGRADED = "degraded"
