from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.services import Services
from bot.settings import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no CONNBOT_* settings from the machine it runs on."""
    for name in list(os.environ):
        if name.startswith("CONNBOT_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", sweep_seconds=0.1)


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
