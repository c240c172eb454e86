"""The settings base every section shares: environment variables prefixed `CONNBOT_`, optionally
a config file.

`CONNBOT_CONFIG` names a file of `CONNBOT_NAME=value` lines (dotenv format); the same names
as the environment, which wins over the file. Each integration has its own settings section
in `integrations/<system>/settings.py`, loaded with `load()` below so that every section reads
the same file and reports errors the same way.

The environment is a mapping handed down from the entry point: the process's own by default, or
the process's with an overlay (the lab's directory, secrets and timings), never edited in place.
`Sections(environ)` loads each section from it once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import distributions
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from playbook.errors import message


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable (the CLI exits 2)."""


PREFIX = "CONNBOT_"


class Section(BaseSettings):
    """Base of every settings section: env prefix `CONNBOT_`, unknown names ignored (and warned
    about by `unknown_names`). Every subclass is listed in `sections` when its module is imported,
    so the names are known (see `every_section`)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_file=None)
    sections: ClassVar[list[type[Section]]] = []
    # Names a section reads itself rather than through a field (e.g. a file's path).
    extra_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Section.sections.append(cls)

    @classmethod
    def env_name(cls, field: str) -> str:
        info = cls.model_fields.get(field)
        return (
            info.alias if info and info.alias else f"{cls.model_config.get('env_prefix', PREFIX)}{field}"
        ).upper()


S = TypeVar("S", bound=Section)


# A URL's user and password, not shown when a bad value is quoted back.
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")
_LINE = re.compile(r"^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=.*$")


class _Environ(EnvSettingsSource):
    """pydantic-settings' environment source, reading `environ` instead of the process's."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): value for name, value in self._environ.items()}


def config_file(environ: Mapping[str, str] = os.environ) -> str | None:
    """The file named by `CONNBOT_CONFIG`, checked line by line (a bad line is named with its number)."""
    path = environ.get(f"{PREFIX}CONFIG")
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else f"cannot read it ({exc})"
        raise SettingsError(f"{PREFIX}CONFIG: {reason}: {path}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#") and not _LINE.match(line):
            raise SettingsError(f"{PREFIX}CONFIG: {path} line {number}: expected NAME=value")
    return path


def config_names(path: str | None) -> set[str]:
    """The names set in the config file (already checked by `config_file`)."""
    if not path:
        return set()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    names = (line.split("=", 1)[0].strip().removeprefix("export").strip() for line in lines if "=" in line)
    return {name.upper() for name in names if not name.startswith("#")}


def every_section() -> list[type[Section]]:
    """Every settings section: those already imported (the caller's own) and those of every installed
    integration (the entry points of the groups `connbot.*`), loaded here, since a section is listed
    when its module is imported."""
    for dist in distributions():
        for entry in dist.entry_points:
            if entry.group.startswith("connbot."):
                entry.load()
    return list(Section.sections)


def known_names() -> set[str]:
    """Every `CONNBOT_*` name a section reads."""
    names = {f"{PREFIX}CONFIG"}
    for cls in every_section():
        names.update(cls.env_name(field) for field in cls.model_fields)
        names.update(cls.extra_names)
    return names


def unknown_names(environ: Mapping[str, str], also: Iterable[str] = ()) -> list[str]:
    """One line per `CONNBOT_*` name (environment or config file) that no section reads, with the
    closest known name: a misspelt setting is otherwise silently ignored."""
    known = known_names()
    lines = []
    for name in sorted({n.upper() for n in [*environ, *also] if n.upper().startswith(PREFIX)}):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]}?)" if close else ""
            lines.append(f"{name} is not a connbot setting and is ignored{hint}")
    return lines


def load(cls: type[S], environ: Mapping[str, str] = os.environ, /, **overrides: Any) -> S:
    """Build a settings section from `overrides`, then `environ`, then the config file it names.

    A bad value raises `SettingsError` with one line per problem naming the variable.
    """
    try:
        path = config_file(environ)
        from_file = DotEnvSettingsSource(cls, env_file=path)() if path else {}
        return cls.model_validate({**from_file, **_Environ(cls, environ)(), **overrides})
    except ValidationError as exc:
        raise SettingsError(describe(exc, cls)) from None
    except SourceError as exc:  # a structured value (JSON) that does not parse
        found = re.search(r'field "(\w+)"', str(exc))
        name = cls.env_name(found.group(1)) if found else "a setting"
        raise SettingsError(f"{name}: expected a JSON value, and this does not parse as JSON") from None


def check_all(environ: Mapping[str, str] = os.environ) -> None:
    """Load every section from `environ`: `SettingsError` with one line per problem of any of them."""
    config_file(environ)  # a bad file once, not once per section
    problems = []
    for cls in every_section():
        try:
            load(cls, environ)
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("\n".join(problems))


class Sections:
    """Settings sections, each loaded (with `load`) from `environ` once, when first asked for: what a
    process's composition root hands to the adapters, ticket systems and prompt channels it configures."""

    def __init__(self, environ: Mapping[str, str] = os.environ, given: Iterable[Section] = ()) -> None:
        self.environ = environ
        self._loaded: dict[type[Section], Section] = {type(section): section for section in given}

    def given(self, *sections: Section) -> Sections:
        """These sections (e.g. one PBX instance's, built from its directory entry) in place of the
        environment's, and every other section from the same environment."""
        return Sections(self.environ, [*self._loaded.values(), *sections])

    def __call__(self, cls: type[S]) -> S:
        section = self._loaded.get(cls)
        if section is None:
            section = self._loaded[cls] = load(cls, self.environ)
        assert isinstance(section, cls)
        return section


def describe(exc: ValidationError, cls: type[BaseSettings]) -> str:
    prefix = cls.model_config.get("env_prefix", PREFIX)
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        info = cls.model_fields.get(field)
        name = (info.alias if info and info.alias else f"{prefix}{field}").upper()
        secret = info is not None and "SecretStr" in str(info.annotation)
        msg = message(err)
        given = err["input"]
        shown = _USERINFO.sub("***@", given) if isinstance(given, str) else given
        got = "" if secret or err["type"] == "missing" else f" (got {shown!r})"
        lines.append(f"{name}: {msg}{got}")
    return "\n".join(lines)
