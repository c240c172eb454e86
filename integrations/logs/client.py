"""The signature catalogue (YAML data) and the classifier that applies it to log lines."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml

from integrations.logs.models import LogClass
from integrations.settings import SettingsError

SUCCESS = "success"
CLASSES = {c.value for c in LogClass} - {LogClass.NONE_FOUND.value} | {SUCCESS}


@dataclass(frozen=True)
class Signature:
    cls: str
    pattern: re.Pattern[str]
    source: str


@dataclass(frozen=True)
class Match:
    line_no: int
    line: str
    cls: str
    source: str


def parse_catalogue(text: str, origin: str) -> list[Signature]:
    """Signatures from YAML text; every problem is reported with its entry number."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{origin}: not valid YAML: {exc}") from None
    entries = data.get("signatures") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SettingsError(f"{origin}: expected a mapping with a list `signatures`")
    sigs, problems = [], []
    for i, entry in enumerate(entries, 1):
        if (
            not isinstance(entry, dict)
            or entry.get("class") not in CLASSES
            or not isinstance(entry.get("pattern"), str)
        ):
            problems.append(f"entry {i}: needs `class` (one of {', '.join(sorted(CLASSES))}) and a `pattern`")
            continue
        try:
            sigs.append(
                Signature(
                    entry["class"], re.compile(entry["pattern"], re.IGNORECASE), str(entry.get("source", ""))
                )
            )
        except re.error as exc:
            problems.append(f"entry {i}: bad pattern: {exc}")
    if problems:
        raise SettingsError(f"{origin}: " + "; ".join(problems))
    return sigs


def builtin() -> list[Signature]:
    return parse_catalogue(
        files("integrations.logs").joinpath("signatures.yaml").read_text(encoding="utf-8"), "signatures.yaml"
    )


def load_catalogue(extra: Path | None = None) -> list[Signature]:
    """The built-in catalogue, preceded by the extra file's signatures when one is given."""
    own = (
        parse_catalogue(extra.read_text(encoding="utf-8"), f"CONNBOT_LOGS_CATALOGUE ({extra})")
        if extra
        else []
    )
    return own + builtin()


def classify(lines: list[str], catalogue: list[Signature]) -> list[Match]:
    """Every line that matches a signature, in log order, classified by its first match."""
    found = []
    for no, line in enumerate(lines, 1):
        for sig in catalogue:
            if sig.pattern.search(line):
                found.append(Match(no, line.strip()[:500], sig.cls, sig.source))
                break
    return found
