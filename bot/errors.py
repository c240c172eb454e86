"""The errors connbot raises on purpose.

    ConnbotError
     ├── SettingsError        a setting is missing or has a bad value (exit code 2)
     ├── PlaybookError        a playbook file is invalid; lists every problem found
     ├── NotFoundError        a run, ticket or prompt that does not exist
     └── BadRequestError      input from outside (webhook, API) that cannot be accepted

Adapter errors (talking to outside systems) live in `integrations.base`.
"""

from __future__ import annotations


class ConnbotError(Exception):
    """Root of connbot's own errors."""


class SettingsError(ConnbotError):
    """A setting is missing or invalid; the message names the variable."""


class PlaybookError(ConnbotError):
    """A playbook failed validation. `problems` lists each one, naming the step."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class NotFoundError(ConnbotError):
    """The thing asked for does not exist."""


class BadRequestError(ConnbotError):
    """Input from outside that cannot be accepted; the message says what was wrong."""

    def __init__(self, message: str, status: int = 400):
        self.status = status
        super().__init__(message)
