"""Helpers for desk tests: a script that leads the shipped playbook to one question, and CSRF tokens."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from integrations.base import Registry
from tests.fakes.adapters import scripted_registry

# Outcomes that lead the shipped playbook to one question for a person (fix the configuration by
# hand), whose answer "connected" closes the ticket once connbot's check sees the app register.
TO_ONE_PROMPT: dict[str, list[Any]] = {
    "app.get_status": ["failed"],
    "app.reconnect": ["still_failing"],
    "app.get_last_error": ["found"],
    "app.check_config": ["wrong_host"],
    "app.fix_config": ["forbidden"],
    "app.recheck": ["registered"],
}
PROMPT_PATH = [
    "check_status",
    "force_reconnect",
    "record_error",
    "check_config",
    "fix_config",
    "fix_config_by_hand",
]
CLOSED_PATH = [*PROMPT_PATH, "recheck_config", "close_config_fixed"]


def one_prompt_registry() -> Registry:
    return scripted_registry({k: list(v) for k, v in TO_ONE_PROMPT.items()})


def csrf(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the client's session, read from a form on `path`."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no form with a CSRF token on {path}"
    return match.group(1)
