"""Last line of defence for what a step stores as evidence: values under secret-looking keys are
dropped, and text (an outside system's words) is cut to `TEXT` characters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from playbook.facts import findings

SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|md5_cred|api_key|authorization|credential(?!_fingerprint)", re.I
)
REDACTED = "[redacted]"
TEXT = 2000


def redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str) and len(value) > TEXT:
        return value[: TEXT - 1] + "…"
    return value


def redact_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """A step's facts, redacted, except its findings: those are a closed, type-checked vocabulary
    (`credentials: password_mismatch` names a result, not a secret) that the diagnosis must see."""
    return {**redact(dict(facts)), **findings(facts)}
