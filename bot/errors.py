"""The errors connbot raises on purpose.

    ConnbotError
     ├── NotFoundError        a run, ticket or prompt that does not exist
     └── BadRequestError      input from outside (webhook, API) that cannot be accepted

Errors of the lower layers: `integrations.settings.SettingsError` (a setting is missing or has a
bad value: exit code 2), `playbook.errors.PlaybookError` (a playbook file is invalid), and the
adapter errors (talking to outside systems) in `integrations.base`.
"""

from __future__ import annotations


class ConnbotError(Exception):
    """Root of connbot's own errors."""


class NotFoundError(ConnbotError):
    """The thing asked for does not exist."""


class BadRequestError(ConnbotError):
    """Input from outside that cannot be accepted; the message says what was wrong."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)
