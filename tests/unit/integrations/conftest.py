"""Fixtures: the outside systems faked at the wire (see wire_fakes.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import responses
from wire_fakes import FakeAri, app_backend, check_contract

from simulators.app_api import Backend, Device


@pytest.fixture
def ari(rsps: responses.RequestsMock) -> FakeAri:
    return FakeAri(rsps)


@pytest.fixture
def app_api(rsps: responses.RequestsMock) -> Iterator[Backend]:
    backend = app_backend(rsps)
    yield backend
    check_contract(rsps)


@pytest.fixture
def phone(app_api: Backend) -> Device:
    """User 1001's app on the `app_api` backend."""
    return app_api.devices[0]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CONNBOT_ variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("CONNBOT_"):
            monkeypatch.delenv(key)
    return monkeypatch
