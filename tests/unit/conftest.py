from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    """The `requests`-based outside systems, faked at the wire."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
