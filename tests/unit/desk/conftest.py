from __future__ import annotations

import pytest

from bot.web.app import create_app
from tests.fakes.desk import one_prompt_registry


@pytest.fixture
def desk(make_services):
    """An app on loopback over services whose adapters lead to one prompt, and its test client."""
    svc = make_services(registry=one_prompt_registry())
    return svc, create_app(svc.settings, svc).test_client()
