"""No PBX action lets a SIP or ARI password out: not in logs, results, evidence, summaries or errors."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from wire_fakes import FakeAri, inp, pbx_adapter

from integrations.base import AdapterError
from integrations.pbx.client import ha1
from simulators.app_api import Device

CANARY = "CANARY-pw-7c1e9d"
ACTIONS = (
    "get_account",
    "create_account",
    "compare_credentials",
    "reset_password",
    "health",
    "check_database",
)


@pytest.fixture
def canary_ari(rsps) -> FakeAri:  # type: ignore[no-untyped-def]
    return FakeAri(rsps, password=CANARY, ari_password=CANARY)


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("missing_account", [False, True])
def test_no_action_leaks_a_password(
    canary_ari: FakeAri,
    phone: Device,
    caplog: pytest.LogCaptureFixture,
    action: str,
    missing_account: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    phone.password = "other"
    if missing_account:
        canary_ari.objects["endpoint"].clear()
    adapter = pbx_adapter(
        ari_password=CANARY, pbx_db_url=f"postgresql://postgres:{CANARY}@127.0.0.1:1/test", pbx_db_timeout=1
    )
    seen: list[str] = [repr(adapter), repr(adapter.ari), repr(vars(adapter.ari))]
    try:
        res = getattr(adapter, action)(inp())
        seen += [res.model_dump_json(), res.summary, repr(res)]
    except AdapterError as exc:
        seen += [str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)]
    generated = [fields["password"] for kind, _, fields in canary_ari.puts if "password" in fields]
    seen.append(caplog.text)
    for text in seen:
        assert CANARY not in text
        for pw in generated:
            assert pw not in text


def test_the_digest_never_shows_its_hash(canary_ari: FakeAri) -> None:
    digest = pbx_adapter(ari_password=CANARY).ari.get_digest("1001", "asterisk")
    assert digest is not None and digest.ha1 == ha1("1001", "asterisk", CANARY)
    assert digest.ha1 not in repr(digest) and CANARY not in repr(digest)


def test_the_redacted_object_keeps_other_fields(canary_ari: FakeAri) -> None:
    obj = pbx_adapter(ari_password=CANARY).ari.get_object("auth", "1001")
    assert (
        obj is not None
        and obj["password"] == "<redacted>"
        and obj["username"] == "1001"
        and obj["md5_cred"] == ""
    )


def test_an_error_answer_echoing_the_password_is_not_repeated(canary_ari: FakeAri) -> None:
    canary_ari.broken["/auth/"] = requests.ConnectionError(f"proxy said {CANARY}")
    with pytest.raises(AdapterError) as info:
        pbx_adapter(ari_password=CANARY).compare_credentials(inp())
    assert CANARY not in str(info.value) and not re.search(CANARY, repr(info.value))
