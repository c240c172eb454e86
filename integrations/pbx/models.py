"""Outcomes of the PBX actions (Asterisk over ARI, and its realtime database)."""

from __future__ import annotations

from enum import StrEnum


class AccountOutcome(StrEnum):
    EXISTS = "exists"
    MISSING = "missing"
    INCOMPLETE = "incomplete"


class CreateAccountOutcome(StrEnum):
    CREATED = "created"
    FORBIDDEN_READONLY_BACKEND = "forbidden_readonly_backend"
    WRITE_DENIED = "write_denied"
    INVALID_FIELDS = "invalid_fields"


class CredentialsOutcome(StrEnum):
    MATCH = "match"
    PASSWORD_MISMATCH = "password_mismatch"
    USERNAME_MISMATCH = "username_mismatch"
    REALM_MISMATCH = "realm_mismatch"
    UNKNOWN = "unknown"


class ResetPasswordOutcome(StrEnum):
    UPDATED_CONNECTED = "updated_connected"
    UPDATED_STILL_FAILING = "updated_still_failing"
    FORBIDDEN = "forbidden"


class HealthOutcome(StrEnum):
    UP = "up"
    DOWN = "down"
    AUTH_ERROR = "auth_error"
    MODULE_NOT_RUNNING = "module_not_running"
    MODULE_MISSING = "module_missing"


class DatabaseOutcome(StrEnum):
    DB_OK = "db_ok"
    NO_DATABASE = "no_database"
    DB_UNREACHABLE = "db_unreachable"
    DB_SLOW = "db_slow"
    DB_SCHEMA_MISSING = "db_schema_missing"
    ASTERISK_DB_LINK_DOWN = "asterisk_db_link_down"
    MODULE_NOT_LOADED = "module_not_loaded"
