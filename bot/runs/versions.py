"""Playbook versions: new runs start on the playbook file as it is now; every run follows, to its
end, the version it started on.

A version is the SHA-256 of the playbook's canonical content (`playbook.loader.version`). The first
run started on a version stores it (table `playbook_versions`) and names it (`runs.playbook_version`);
a process that meets a run of a version it has not loaded reads it from the store once.

The file is the one source of what new runs start on: every process looks at it (its size and
modification time, one `stat`) before it starts a run and reads it again when it changed, so a
changed playbook needs no restart. A change that does not load (invalid, half written) is logged
once, naming every problem, and the last good version stays the current one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.state.models import PlaybookVersion, Run
from bot.state.store import Store, after_commit
from playbook import loader
from playbook.diagnosis import Rules
from playbook.errors import PlaybookError
from playbook.models import ActionSpec, Playbook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """A playbook with its version and the file state it was read at."""

    playbook: Playbook
    version: str
    content: str
    seen: tuple[int, int]  # the file's (size, mtime_ns) when it was read


class Playbooks:
    """The current playbook (the file, read again when it changes) and the versions runs are pinned to."""

    def __init__(
        self, store: Store, path: Path | None, catalogue: Mapping[str, ActionSpec], rules: Rules
    ) -> None:
        self.store, self.path, self.catalogue, self.rules = store, path or loader.DEFAULT, catalogue, rules
        self._lock = threading.Lock()
        self._current = self._read()  # a playbook that does not load at start is a set-up error
        self._versions: dict[str, Playbook] = {self._current.version: self._current.playbook}
        self._stored: set[str] = set()
        self._refused: tuple[int, int] | None = None

    def _read(self) -> Loaded:
        seen = _state(self.path)
        pb = loader.load(self.path, self.catalogue, self.rules)
        content = loader.dump(pb)
        return Loaded(pb, loader.version(content), content, seen)

    def current(self) -> Loaded:
        """The playbook new runs start on: the file's, read again if it changed since."""
        seen = _state(self.path)
        if seen in (self._current.seen, self._refused):
            return self._current
        with self._lock:
            if seen not in (self._current.seen, self._refused):
                self._reload(seen)
            return self._current

    def _reload(self, seen: tuple[int, int]) -> None:
        try:
            fresh = self._read()
        except PlaybookError as exc:
            self._refused = seen
            log.error(
                "playbook %s changed but does not load; new runs stay on version %s: %s",
                exc.source,
                self._current.version[:12],
                "; ".join(exc.problems),
            )
            return
        if fresh.version != self._current.version:
            log.warning(
                "playbook %s changed: new runs start on version %s (was %s); runs under way keep theirs",
                self.path,
                fresh.version[:12],
                self._current.version[:12],
            )
        self._versions[fresh.version] = fresh.playbook
        self._current, self._refused = fresh, None

    def pin(self, s: Session) -> tuple[str, Playbook]:
        """The current version for a run starting in `s`: stored in `s` unless it is already."""
        cur = self.current()
        if cur.version not in self._stored and s.get(PlaybookVersion, cur.version) is None:
            try:
                with s.begin_nested():
                    s.add(
                        PlaybookVersion(
                            version=cur.version,
                            name=cur.playbook.name,
                            title=cur.playbook.title,
                            content=cur.content,
                            source=str(self.path),
                        )
                    )
            except IntegrityError:  # another process stored it first
                pass
        after_commit(s, lambda: self._stored.add(cur.version))
        return cur.version, cur.playbook

    def of(self, run: Run) -> Playbook:
        """The playbook version `run` follows (the current one for a run from before versions)."""
        if run.playbook_version is None:
            return self.current().playbook
        found = self._versions.get(run.playbook_version)
        if found is None:
            with self.store.tx() as s:
                kept = s.get(PlaybookVersion, run.playbook_version)
                if kept is None:
                    raise LookupError(f"run {run.id}: playbook version {run.playbook_version} is not stored")
                found = self._versions.setdefault(kept.version, loader.restore(kept.content, self.rules))
        return found


def _state(path: Path) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)  # gone (being replaced?): loading it says what is wrong
    return (st.st_size, st.st_mtime_ns)
