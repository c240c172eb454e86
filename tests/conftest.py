from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bot.services import Services
from bot.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_json(relative: str, what: str) -> Any:
    """The JSON file `relative` of ../shared (official specs and real payloads, beside this checkout),
    or a skip saying it is absent; `what` says what the file holds. Usable at a module's top too."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} is not beside this checkout (it holds {what})", allow_module_level=True)
    return json.loads(path.read_text())


@contextmanager
def transactions(svc: Any) -> Iterator[list[list[str]]]:
    """The statements of each commit on the store's engine meanwhile (the last list: those after the
    last commit), each as its verb and, for an UPDATE or INSERT, its table."""
    done: list[list[str]] = [[]]

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        words = sql.split()
        table = {"UPDATE": 1, "INSERT": 2}.get(words[0])  # where the verb's table is named
        done[-1].append(f"{words[0]} {words[table]}" if table else words[0])

    def commit(*_: Any) -> None:
        done.append([])

    event.listen(svc.store.engine, "before_cursor_execute", statement)
    event.listen(svc.store.engine, "commit", commit)
    try:
        yield done
    finally:
        event.remove(svc.store.engine, "before_cursor_execute", statement)
        event.remove(svc.store.engine, "commit", commit)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no CONNBOT_* settings from the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("CONNBOT_"):
            monkeypatch.delenv(name)


# The periodic check of every PBX is off unless a test is about it (tests/scenario/test_incidents.py):
# elsewhere each sweep would run it against the test's scripted adapters.
QUIET = {"sweep_seconds": 0.1, "health_check_seconds": 0}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", **QUIET)


@pytest.fixture
def make_services(settings: Settings) -> Iterator:
    built: list[Services] = []

    def make(**kwargs) -> Services:
        svc = Services.build(kwargs.pop("settings", settings), **kwargs)
        svc.store.upgrade()
        built.append(svc)
        return svc

    yield make
    for svc in built:
        svc.close()


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A database of its own per test (1-15, at random), so that test runs side by side on one machine
# rarely share one; each test flushes the one it gets.
REDIS_URL = "redis://127.0.0.1:6379/{db}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a schema of their own, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    import random

    import redis

    url = REDIS_URL.format(db=random.randint(1, 15))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the embedded defaults and for the scale-out stores, in turn."""
    if request.param == "sqlite":
        return Settings(data_dir=tmp_path / "data", **QUIET)
    return Settings(
        data_dir=tmp_path / "data",
        **QUIET,
        database_url=request.getfixturevalue("pg_url"),
        queue_url=request.getfixturevalue("redis_url"),
    )
