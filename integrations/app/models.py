"""Outcomes of the app-backend actions (App Management API v1)."""

from __future__ import annotations

from enum import StrEnum


class FindUserOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"


class StatusOutcome(StrEnum):
    REGISTERED = "registered"
    REGISTERING = "registering"
    UNREGISTERED = "unregistered"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DEVICE_OFFLINE = "device_offline"


class ReconnectOutcome(StrEnum):
    RECONNECTED = "reconnected"
    STILL_FAILING = "still_failing"
    DEVICE_OFFLINE = "device_offline"
    TIMEOUT = "timeout"


class RecheckOutcome(StrEnum):
    REGISTERED = "registered"
    STILL_FAILING = "still_failing"
    DEVICE_OFFLINE = "device_offline"
    TIMEOUT = "timeout"


class LastErrorOutcome(StrEnum):
    FOUND = "found"
    NONE = "none"


class ConfigOutcome(StrEnum):
    OK = "ok"
    WRONG_HOST = "wrong_host"
    WRONG_PORT = "wrong_port"
    WRONG_TRANSPORT = "wrong_transport"
    WRONG_USERNAME = "wrong_username"
    WRONG_DOMAIN = "wrong_domain"
    UNRESOLVABLE_HOST = "unresolvable_host"


class FixConfigOutcome(StrEnum):
    FIXED_CONNECTED = "fixed_connected"
    FIXED_STILL_FAILING = "fixed_still_failing"
    FORBIDDEN = "forbidden"


class NetworkTestOutcome(StrEnum):
    """The device-side network test: the first failing layer, as the server-side probes name them."""

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
    UNSUPPORTED = "unsupported"
    DEVICE_OFFLINE = "device_offline"
    NO_RESULT = "no_result"
