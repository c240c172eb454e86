"""Last line of defence for secrets: drop values under secret-looking keys before anything is stored."""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|md5_cred|api_key|authorization|credential(?!_fingerprint)", re.I
)
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value
