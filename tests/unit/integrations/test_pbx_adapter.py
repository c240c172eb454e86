"""pbx.* against an ARI faked at the wire (and the app backend where passwords are involved)."""

from __future__ import annotations

import json
import re
import socket
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import requests
from wire_fakes import FakeAri, inp, pbx_adapter

from integrations.base import NotConfiguredError, PermanentError, TransientError
from integrations.pbx.client import ha1
from simulators.app_api import Backend, Device

PG = "postgresql://postgres@127.0.0.1:5432/test"


def outcome_of(action: str, **kw: object) -> tuple[str, str, dict]:
    res = getattr(pbx_adapter(**kw), action)(inp())
    return res.outcome, res.summary, res.evidence


# -- get_account
def test_get_account_exists_names_its_parts(ari: FakeAri) -> None:
    out, summary, ev = outcome_of("get_account")
    assert out == "exists" and "1001" in summary
    assert ev["auth"] == ["1001"] and ev["aors"] == ["1001"] and ev["missing"] == []


@pytest.mark.parametrize("online", [True, False])
def test_get_account_says_whether_a_registration_holds_an_account_of_one_place(
    ari: FakeAri, online: bool
) -> None:
    """An AOR with max_contacts 1 that keeps its contact (remove_existing off) has no room for the app
    while PJSIP calls the endpoint online: the PBX answers the app's REGISTER 403."""
    ari.objects["aor"]["1001"]["remove_existing"] = "no"
    ari.asterisk.online = lambda resource: online and resource == "1001"
    found = pbx_adapter(with_app=False).get_account(inp())
    assert found.outcome == "exists" and found.facts["contacts_full"] is online
    assert found.summary == (
        "Account 1001 exists on the PBX (endpoint, auth 1001, AOR 1001); its AOR takes one device at a time "
        "(max_contacts 1, remove_existing off) and "
        + ("one is registered now: the PBX refuses any other (403)." if online else "none is registered now.")
    )


def test_an_offline_endpoint_with_qualify_on_may_still_hold_its_place(ari: FakeAri) -> None:
    """With qualify on, PJSIP calls an endpoint offline when its contact does not answer OPTIONS, and
    that contact still takes the AOR's one place: connbot does not say the place is free."""
    ari.objects["aor"]["1001"].update(remove_existing="no", qualify_frequency="60")
    found = pbx_adapter(with_app=False).get_account(inp())
    assert "contacts_full" not in found.facts
    assert found.summary.endswith(
        "and ARI gives the endpoint's state as offline: with qualify on, a registration that does not "
        "answer may still hold the place."
    )


def test_get_account_says_nothing_of_registrations_when_a_new_one_replaces_the_old(ari: FakeAri) -> None:
    ari.asterisk.online = lambda resource: True  # remove_existing is true in the fixture
    found = pbx_adapter(with_app=False).get_account(inp())
    assert "contacts_full" not in found.facts and found.summary.endswith("AOR 1001).")


def test_get_account_missing(ari: FakeAri) -> None:
    ari.objects["endpoint"].clear()
    out, summary, _ = outcome_of("get_account")
    # what the PBX answered, not a verdict: during a database outage every look-up answers 404
    assert out == "missing"
    assert re.fullmatch(
        r"Looking up account 1001, the PBX answered 404 after \d+ ms: no PJSIP endpoint 1001 was found\.",
        summary,
    )


@pytest.mark.parametrize("gone, named", [("auth", "auth 1001"), ("aor", "aor 1001")])
def test_get_account_incomplete_when_a_referenced_object_is_missing(
    ari: FakeAri, gone: str, named: str
) -> None:
    ari.objects[gone].clear()
    out, summary, ev = outcome_of("get_account")
    assert out == "incomplete" and named in summary and ev["missing"] == [named]


def test_get_account_incomplete_names_each_missing_object(ari: FakeAri) -> None:
    ari.objects["auth"].clear()
    ari.objects["aor"].clear()
    out, summary, _ = outcome_of("get_account")
    assert out == "incomplete"
    assert summary == "Account 1001 is incomplete on the PBX: its endpoint lacks auth 1001 and aor 1001."
    res = pbx_adapter(with_app=False).create_account(inp())
    assert res.summary == (
        "Repaired account 1001 on the PBX: created only its missing auth 1001 and aor 1001; connbot could "
        "not give the app the new password: no app backend is configured."
    )


def test_get_account_incomplete_when_the_endpoint_references_no_auth(ari: FakeAri) -> None:
    ari.objects["endpoint"]["1001"]["auth"] = ""
    del ari.objects["aor"]["1001"]
    found = pbx_adapter(with_app=False).get_account(inp())
    assert found.outcome == "incomplete" and found.evidence["unset"] == ["auth"]
    assert (
        found.summary
        == "Account 1001 is incomplete on the PBX: its endpoint names no auth and lacks aor 1001."
    )
    # only the AOR is an object to create; the endpoint's missing auth setting is a finding of its own
    assert found.facts["account_missing"] == ["aor 1001"] and found.facts["endpoint_unset"] == ["auth"]


def test_wrong_ari_password_is_a_clear_permanent_error(ari: FakeAri) -> None:
    with pytest.raises(PermanentError, match=r"401 Authentication required.*CONNBOT_ARI"):
        pbx_adapter(ari_password="wrong").get_account(inp())


@pytest.mark.parametrize(
    "answer, error, text",
    [
        # the answer's message in words, not its JSON (it ends up in ticket comments)
        (
            (500, {}, json.dumps({"message": "Internal Server Error"})),
            TransientError,
            r"^ARI at \S+ answered HTTP 500: Internal Server Error$",
        ),
        ((200, {}, "<html>not json"), PermanentError, "malformed JSON"),
        ((200, {}, json.dumps({"unexpected": "object"})), PermanentError, "expected a list"),
        (requests.ReadTimeout("read timed out"), TransientError, r"^ARI at [^/\s]+ did not answer in time$"),
    ],
)
def test_get_account_maps_server_errors(ari: FakeAri, answer: object, error: type, text: str) -> None:
    ari.broken["/endpoint/"] = answer
    with pytest.raises(error, match=text):
        pbx_adapter().get_account(inp())


def test_get_account_needs_a_user(ari: FakeAri) -> None:
    with pytest.raises(PermanentError, match="no PBX user"):
        pbx_adapter().get_account(inp(user=None))


# -- create_account
def test_create_account_creates_auth_aor_endpoint_in_order_and_gives_the_app_the_password(
    ari: FakeAri, phone: Device
) -> None:
    for kind in ari.objects:
        ari.objects[kind].clear()
    res = pbx_adapter(pbx_context="users", pbx_transport="transport-tls").create_account(inp())
    assert res.outcome == "created"
    assert [(k, i) for k, i, _ in ari.puts] == [("auth", "1001"), ("aor", "1001"), ("endpoint", "1001")]
    endpoint = ari.objects["endpoint"]["1001"]
    assert (
        endpoint["context"] == "users"
        and endpoint["transport"] == "transport-tls"
        and endpoint["auth"] == "1001"
    )
    password = ari.objects["auth"]["1001"]["password"]
    assert len(password) >= 20 and phone.password == password
    assert res.evidence["app_password_set"] is True and password not in res.model_dump_json()
    assert pbx_adapter().get_account(inp()).outcome == "exists"


def test_create_account_without_app_says_the_app_did_not_get_the_password(ari: FakeAri) -> None:
    ari.objects["endpoint"].clear()
    res = pbx_adapter(with_app=False).create_account(inp())
    assert res.outcome == "created" and res.summary.endswith(
        "; connbot could not give the app the new password: no app backend is configured."
    )


@pytest.mark.parametrize(
    "flag, outcome, words",
    [
        ("read_only_user", "write_denied", "read-only"),
        ("read_only_backend", "forbidden_readonly_backend", "by hand"),
    ],
)
def test_create_account_refused(ari: FakeAri, flag: str, outcome: str, words: str) -> None:
    ari.objects["endpoint"].clear()
    setattr(ari, flag, True)
    res = pbx_adapter(with_app=False).create_account(inp())
    assert res.outcome == outcome and words in res.summary and res.evidence["created"] == []


def test_create_account_invalid_fields_reports_what_was_created(ari: FakeAri) -> None:
    for kind in ari.objects:
        ari.objects[kind].clear()
    ari.reject_fields = {"endpoint"}
    res = pbx_adapter(with_app=False).create_account(inp())
    assert (
        res.outcome == "invalid_fields"
        and res.evidence["created"] == ["auth 1001", "aor 1001"]
        and res.evidence["failed_at"] == "endpoint 1001"
    )


def test_create_account_never_overwrites_an_existing_account(ari: FakeAri) -> None:
    with pytest.raises(PermanentError, match="already exists"):
        pbx_adapter(with_app=False).create_account(inp())
    assert ari.puts == []


# -- compare_credentials
def _credentials(phone: Device, realm: str = "asterisk", password: str = "s3cret-pw") -> None:
    phone.realm, phone.password = realm, password


def test_compare_credentials_match(ari: FakeAri, phone: Device) -> None:
    _credentials(phone)
    out, _summary, ev = outcome_of("compare_credentials")
    assert out == "match" and ev["pbx_realm"] == "asterisk"


def test_compare_credentials_password_mismatch(ari: FakeAri, phone: Device) -> None:
    _credentials(phone, password="old-password")
    out, summary, _ = outcome_of("compare_credentials")
    assert out == "password_mismatch" and "differs" in summary


def test_compare_credentials_uses_md5_cred_when_the_pbx_stores_no_plaintext(
    ari: FakeAri, phone: Device
) -> None:
    ari.objects["auth"]["1001"].update(
        password="", md5_cred=ha1("1001", "asterisk", "s3cret-pw"), auth_type="md5"
    )
    _credentials(phone)
    assert outcome_of("compare_credentials")[0] == "match"


def test_compare_credentials_username_mismatch(ari: FakeAri, phone: Device) -> None:
    phone.auth_username = "jane"
    _credentials(phone)
    out, summary, _ = outcome_of("compare_credentials")
    assert out == "username_mismatch" and "'jane'" in summary


def test_compare_credentials_realm_mismatch(ari: FakeAri, phone: Device) -> None:
    _credentials(phone, realm="pbx.example.com")
    assert outcome_of("compare_credentials")[0] == "realm_mismatch"


def test_compare_credentials_unknown_without_app_or_fingerprint(ari: FakeAri, phone: Device) -> None:
    assert outcome_of("compare_credentials", with_app=False)[0] == "unknown"
    phone.capabilities["credential_fingerprint"] = []
    out, summary, _ = outcome_of("compare_credentials")
    assert out == "unknown" and "fingerprint" in summary


# -- reset_password
def test_reset_password_sets_the_same_new_password_on_both_sides_and_reconnects(
    ari: FakeAri, phone: Device
) -> None:
    res = pbx_adapter().reset_password(inp())
    assert res.outcome == "updated_connected"
    new = ari.objects["auth"]["1001"]["password"]
    assert new != "s3cret-pw" and phone.password == new
    assert phone.patches[-1]["reregister"] is True
    assert new not in res.model_dump_json()


def test_reset_password_still_failing(ari: FakeAri, app_api: Backend, phone: Device) -> None:
    app_api.action_seconds = 0.02
    phone.failure = lambda device: {"sip_code": 403, "reason": "Forbidden", "local_error": None}
    res = pbx_adapter().reset_password(inp())
    assert res.outcome == "updated_still_failing" and res.evidence["action_status"] == "failed"
    # the credentials are compared again: the comparison before the reset no longer holds
    assert res.summary == (
        "Set a new password for 1001 on the PBX and in the app, but the app still does not register. "
        "Compared again: The app's username, realm and password for 1001 match the PBX's."
    )
    assert res.facts["credentials"] == "match"


def test_reset_password_forbidden_by_the_pbx_changes_nothing(ari: FakeAri, phone: Device) -> None:
    ari.read_only_backend = True
    res = pbx_adapter().reset_password(inp())
    assert res.outcome == "forbidden" and res.evidence["pbx_updated"] is False and phone.patches == []


def test_reset_password_forbidden_by_the_app_says_the_pbx_changed(ari: FakeAri, phone: Device) -> None:
    phone.managed = True
    res = pbx_adapter().reset_password(inp())
    assert res.outcome == "forbidden" and res.evidence["pbx_updated"] is True and "by hand" in res.summary


def test_reset_password_forbidden_when_the_device_cannot_take_a_password(ari: FakeAri, phone: Device) -> None:
    phone.capabilities["config_write"] = ["server"]
    res = pbx_adapter().reset_password(inp())
    assert res.outcome == "forbidden" and ari.puts == []


def test_reset_password_needs_the_app_backend(ari: FakeAri) -> None:
    with pytest.raises(NotConfiguredError):
        pbx_adapter(with_app=False).reset_password(inp())


# -- health
def test_health_up(ari: FakeAri) -> None:
    out, summary, ev = outcome_of("health")
    assert out == "up" and "22.5.0" in summary and set(ev["modules"].values()) == {"Running"}


def test_health_down_when_ari_does_not_answer(ari: FakeAri) -> None:
    ari.down = True
    assert outcome_of("health")[0] == "down"


def test_health_down_on_server_errors(ari: FakeAri) -> None:
    ari.broken["/asterisk/ping"] = (503, {}, json.dumps({"message": "Service Unavailable"}))
    assert outcome_of("health")[0] == "down"


def test_health_auth_error(ari: FakeAri) -> None:
    assert outcome_of("health", ari_password="nope")[0] == "auth_error"


def test_health_acl_denied_is_an_auth_error(ari: FakeAri) -> None:
    ari.broken["/asterisk/ping"] = (403, {}, json.dumps({"message": "Access denied by ACL"}))
    assert outcome_of("health")[0] == "auth_error"


@pytest.mark.parametrize(
    "stopped, said",
    [
        (["res_pjsip.so"], "res_pjsip.so is not running"),
        (["res_pjsip.so", "chan_pjsip.so"], "res_pjsip.so and chan_pjsip.so are not running"),
        (
            ["res_pjsip.so", "res_pjsip_registrar.so", "chan_pjsip.so"],
            "res_pjsip.so, res_pjsip_registrar.so and chan_pjsip.so are not running",
        ),
    ],
)
def test_health_module_not_running(ari: FakeAri, stopped: list[str], said: str) -> None:
    ari.modules.update(dict.fromkeys(stopped, "Not Running"))
    out, summary, _ = outcome_of("health")
    assert out == "module_not_running" and summary == f"Asterisk answers but {said}."


@pytest.mark.parametrize(
    "gone, said",
    [
        (["chan_pjsip.so"], "chan_pjsip.so is not loaded"),
        (
            ["res_pjsip_registrar.so", "chan_pjsip.so"],
            "res_pjsip_registrar.so and chan_pjsip.so are not loaded",
        ),
    ],
)
def test_health_module_missing(ari: FakeAri, gone: list[str], said: str) -> None:
    for name in gone:
        del ari.modules[name]
    out, summary, _ = outcome_of("health")
    assert out == "module_missing" and summary == f"Asterisk answers but {said}."


# -- check_database
@pytest.fixture
def pg_schema() -> Iterator[tuple[str, psycopg.Connection]]:
    """A fresh schema in the real PostgreSQL, reached through the URL's search_path."""
    try:
        conn = psycopg.connect(PG, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not available: {exc}")
    name = f"connbot_{uuid.uuid4().hex[:8]}"
    conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{PG}?options=-csearch_path%3D{name}", conn
    finally:
        conn.execute(f"DROP SCHEMA {name} CASCADE")
        conn.close()


def _tables(conn: psycopg.Connection, url: str) -> None:
    schema = url.rsplit("%3D", 1)[1]
    for t in ("ps_endpoints", "ps_auths", "ps_aors"):
        conn.execute(f"CREATE TABLE {schema}.{t} (id varchar(40) PRIMARY KEY)")


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("user", ["1001", None])
def test_check_database_ok(ari: FakeAri, pg_schema: tuple[str, psycopg.Connection], user: str | None) -> None:
    url, conn = pg_schema
    _tables(conn, url)
    ari.modules["res_config_pgsql.so"] = "Running"
    res = pbx_adapter(pbx_db_url=url).check_database(inp(user=user))
    ev = res.evidence
    assert res.outcome == "db_ok" and ev["tables"] == {
        "ps_endpoints": True,
        "ps_auths": True,
        "ps_aors": True,
    }
    assert ev["latency_ms"] >= 0 and ev.get("lookup_through_asterisk") == ("found" if user else None)
    said = f"The realtime database answers in {ev['latency_ms']:.0f} ms"
    assert res.summary == (
        f"{said}, Asterisk's link to it (res_config_pgsql.so) is up and looking up 1001 took "
        f"{ev['lookup_ms']:.0f} ms."
        if user
        else f"{said} and Asterisk's link to it (res_config_pgsql.so) is up."
    )


@pytest.mark.parametrize("user", ["1001", None])
def test_check_database_ok_without_a_database_url_says_only_what_asterisk_shows(
    ari: FakeAri, user: str | None
) -> None:
    ari.modules["res_config_pgsql.so"] = "Running"
    res = pbx_adapter().check_database(inp(user=user))
    said = "Asterisk's link to the realtime database (res_config_pgsql.so) is up"
    assert res.outcome == "db_ok"
    assert res.summary == (
        f"{said} and looking up 1001 took {res.evidence['lookup_ms']:.0f} ms." if user else f"{said}."
    )


def test_check_database_slow(ari: FakeAri, pg_schema: tuple[str, psycopg.Connection]) -> None:
    url, conn = pg_schema
    _tables(conn, url)
    ari.modules["res_config_pgsql.so"] = "Running"
    assert outcome_of("check_database", pbx_db_url=url, pbx_db_slow_ms=0.001)[0] == "db_slow"


def test_check_database_schema_missing(ari: FakeAri, pg_schema: tuple[str, psycopg.Connection]) -> None:
    out, summary, _ = outcome_of("check_database", pbx_db_url=pg_schema[0])
    assert out == "db_schema_missing" and "ps_endpoints" in summary


def test_check_database_unreachable_hides_the_password(ari: FakeAri) -> None:
    out, summary, ev = outcome_of(
        "check_database",
        pbx_db_url=f"postgresql://postgres:db-pw-123@127.0.0.1:{_unused_port()}/test",
        pbx_db_timeout=1,
    )
    assert out == "db_unreachable" and "db-pw-123" not in summary + json.dumps(ev)


def test_check_database_module_not_loaded(ari: FakeAri, pg_schema: tuple[str, psycopg.Connection]) -> None:
    url, conn = pg_schema
    _tables(conn, url)
    assert outcome_of("check_database", pbx_db_url=url)[0] == "module_not_loaded"


@pytest.mark.parametrize(
    "odbc, said",
    [
        ("Running", "res_odbc.so is not running"),
        ("Not Running", "res_odbc.so and res_config_odbc.so are not running"),
    ],
)
def test_check_database_asterisk_link_down_when_the_driver_stopped(
    ari: FakeAri, odbc: str, said: str
) -> None:
    ari.modules.update({"res_odbc.so": "Not Running", "res_config_odbc.so": odbc})
    out, summary, _ = outcome_of("check_database")
    assert out == "asterisk_db_link_down" and summary == f"Asterisk's database link is down: {said}."


def test_check_database_asterisk_link_down_when_lookups_fail(ari: FakeAri) -> None:
    ari.modules["res_config_pgsql.so"] = "Running"
    ari.broken["/endpoint/"] = (500, {}, json.dumps({"message": "Internal Server Error"}))
    assert outcome_of("check_database")[0] == "asterisk_db_link_down"


def test_check_database_no_database(ari: FakeAri) -> None:
    assert outcome_of("check_database")[0] == "no_database"
