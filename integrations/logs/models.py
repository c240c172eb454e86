"""Root-cause classes the client-log classifier can find."""

from __future__ import annotations

from enum import StrEnum


class LogClass(StrEnum):
    NONE_FOUND = "none_found"
    AUTH_FAILURE = "auth_failure"
    UNKNOWN_USER = "unknown_user"
    FORBIDDEN = "forbidden"
    MAX_CONTACTS = "max_contacts"
    TIMEOUT_NO_RESPONSE = "timeout_no_response"
    TRANSPORT_REFUSED = "transport_refused"
    SERVER_UNAVAILABLE = "server_unavailable"
    TLS_FAILURE = "tls_failure"
    DNS_FAILURE = "dns_failure"
    NAT_KEEPALIVE = "nat_keepalive"
    CONFIG_ERROR = "config_error"
    DB_BACKEND = "db_backend"
