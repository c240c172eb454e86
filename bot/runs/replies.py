"""Replies for the customer: public, short and plain, from templates a team can edit, in the
reporter's language where it is known.

The shipped templates (`replies.yaml` beside this module) are extended by a team's own file
(`CONNBOT_REPLIES`): each template it names replaces the shipped one language by language. Every
template has the default language's text (`CONNBOT_REPLIES_LANGUAGE`), the one used when the
reporter's language is unknown or has no text. Loading checks all of it, naming the file, the
template and the language.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path

import yaml

from integrations.settings import SettingsError

SHIPPED = Path(__file__).with_name("replies.yaml")
MAX_TEXT = 1000  # a reply is short: a sentence or three


def language_of(locale: str | None) -> str | None:
    """The language of a locale as Jira gives it (`it_IT`, `en-GB`, `it`), lower case."""
    return locale.replace("-", "_").split("_")[0].lower() or None if locale else None


class Replies:
    """Reply templates by name and language."""

    def __init__(self, templates: Mapping[str, Mapping[str, str]], language: str = "en"):
        self.templates = {name: dict(texts) for name, texts in templates.items()}
        self.language = language

    @classmethod
    def load(cls, team: Path | None = None, language: str = "en") -> Replies:
        """The shipped templates, extended by a team's file; a clear error for anything wrong."""
        merged = _read(SHIPPED)
        for name, texts in (_read(team) if team else {}).items():
            merged[name] = {**merged.get(name, {}), **texts}
        where = f"{SHIPPED} and {team}" if team else str(SHIPPED)
        missing = sorted(name for name, texts in merged.items() if language not in texts)
        if missing:
            raise SettingsError(
                f"reply templates ({where}): {', '.join(missing)} have no {language!r} text "
                f"(CONNBOT_REPLIES_LANGUAGE, the language used when the reporter's is unknown)"
            )
        return cls(merged, language)

    def has(self, name: str) -> bool:
        return name in self.templates

    def text(self, name: str, locale: str | None = None, **values: str) -> str:
        """The template `name` in the locale's language (else the default one), `$name` values filled in."""
        texts = self.templates.get(name)
        if texts is None:
            raise KeyError(f"no reply template {name!r} (known: {', '.join(sorted(self.templates))})")
        chosen = texts.get(language_of(locale) or "") or texts[self.language]
        return string.Template(chosen).safe_substitute(values)


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"reply templates {path}: cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"reply templates {path}: expected a mapping of template name to languages")
    out: dict[str, dict[str, str]] = {}
    for name, texts in data.items():
        if not isinstance(texts, dict) or not texts:
            raise SettingsError(f"reply templates {path}: {name}: expected a mapping of language to text")
        for lang, text in texts.items():
            if not isinstance(lang, str) or language_of(lang) != lang:
                raise SettingsError(
                    f"reply templates {path}: {name}: {lang!r} is not a language code such as en"
                )
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
                raise SettingsError(
                    f"reply templates {path}: {name}.{lang}: expected a text of 1 to {MAX_TEXT} characters"
                )
        out[str(name)] = {str(lang): " ".join(str(text).split()) for lang, text in texts.items()}
    return out
