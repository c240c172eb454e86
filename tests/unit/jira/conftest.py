from __future__ import annotations

import pytest
import responses

from tests.fakes.jira import FakeJira


@pytest.fixture
def fake(rsps: responses.RequestsMock) -> FakeJira:
    return FakeJira(rsps)
