"""logs.classify on real-looking pjsip, baresip, linphone and Asterisk lines, for every class."""

from __future__ import annotations

from pathlib import Path

import pytest
from wire_fakes import FAST, app_settings, inp

from integrations.base import NotConfiguredError
from integrations.logs.adapter import LogsAdapter
from integrations.logs.client import builtin, load_catalogue
from integrations.logs.models import LogClass
from integrations.logs.settings import LogsSettings
from integrations.settings import SettingsError
from simulators.app_api import Backend

LINES = {
    LogClass.AUTH_FAILURE: [
        "09:58:10.120   pjsua_acc.c  ....SIP registration failed, status=401 (Unauthorized)",
        "reg: sip:1001@pbx.example.com: 401 Unauthorized",
        "[2026-08-06 09:58:10] NOTICE[2210]: res_pjsip/pjsip_distributor.c:676 log_failed_request: Request "
        "'REGISTER' from '<sip:1001@pbx.example.com>' failed for '203.0.113.5:5060' (callid: a84b4c76e66710) "
        "- Failed to authenticate",
        "10:00:01.002 sip_auth_client.c  Authorization failed for sip:pbx.example.com: server rejected with "
        "stale=false",
    ],
    LogClass.UNKNOWN_USER: [
        "[2026-08-06 09:58:10] NOTICE[2210]: res_pjsip/pjsip_distributor.c:676 log_failed_request: Request "
        "'REGISTER' from '<sip:1009@pbx.example.com>' failed for '203.0.113.5:5060' (callid: 9a8b) - No "
        "matching endpoint found after 5 tries in 0.123 ms",
    ],
    LogClass.FORBIDDEN: ["SIP registration failed, status=403 (Forbidden)"],
    LogClass.MAX_CONTACTS: [
        "WARNING[2211]: res_pjsip_registrar.c:780 registrar_validate_contacts: Registration attempt from "
        "endpoint '1001' (203.0.113.5:5060) to AOR '1001' will exceed max contacts of 1",
    ],
    LogClass.TIMEOUT_NO_RESPONSE: [
        "10:02:33.000   pjsua_acc.c  ....SIP registration failed, status=408 (Request Timeout)",
        "ua: reg: sip:1001@pbx.example.com: Register: Connection timed out [110]",
    ],
    LogClass.TRANSPORT_REFUSED: ["ua: reg: sip:1001@pbx.example.com: Register: Connection refused [111]"],
    LogClass.SERVER_UNAVAILABLE: [
        "10:04:00.000   pjsua_acc.c  ....SIP registration failed, status=503 (Service Unavailable)"
    ],
    LogClass.TLS_FAILURE: [
        "10:05:00.000 tlsc0x7f  TLS connect() error: certificate verify failed (certificate has expired)",
        "ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "self-signed certificate",
    ],
    LogClass.DNS_FAILURE: [
        "10:06:00.000   pjsua_acc.c  ....SIP registration failed, status=502 (gethostbyname() has returned "
        "error (PJ_ERESOLVE))",
        "ua: reg: sip:1001@pbx.exmaple.com: Register: Destination address required [89]",
    ],
    LogClass.NAT_KEEPALIVE: [
        "VERBOSE[2212]: res_pjsip/pjsip_options.c:1234 Contact 1001/sip:1001@192.168.1.23:5060 is now "
        "Unreachable.  RTT: 0.000 msec",
        "[2026-08-06 10:10:00] VERBOSE[2230]: res_pjsip_registrar.c Removed contact "
        "'sip:1001@192.168.1.23:5060' from AOR '1001' due to expiration",
    ],
    LogClass.CONFIG_ERROR: ["10:07:00.000   pjsua_acc.c  Invalid registrar URI: sip:pbx example com"],
    LogClass.DB_BACKEND: [
        "WARNING[2301]: res_odbc.c:531 ast_odbc_prepare_and_execute: SQL query 'SELECT * FROM ps_endpoints' "
        "took 2412 milliseconds to execute on class 'asterisk', this may indicate a database problem",
        "ERROR[2302]: res_config_pgsql.c:1510 pgsql_reconnect: PostgreSQL RealTime: Failed to connect "
        "database asterisk on 10.0.0.5: Unable to connect asterisk@10.0.0.5, port 5432",
    ],
}


def adapter(app: Backend | None = None, extra: Path | None = None) -> LogsAdapter:
    return LogsAdapter.from_settings(
        LogsSettings(logs_catalogue=extra), app_settings() if app else None, policy=FAST
    )


def test_every_class_has_test_lines() -> None:
    assert set(LINES) == set(LogClass) - {LogClass.NONE_FOUND}


@pytest.mark.parametrize("cls, line", [(c, line) for c, lines in LINES.items() for line in lines])
def test_each_signature_class(cls: LogClass, line: str) -> None:
    log = "\n".join(["09:50:00.000 pjsua_core.c  Initializing", line, "09:59:00.000 pjsua_core.c  idle"])
    res = adapter().classify(inp(client_log=log))
    assert res.outcome == cls.value
    assert res.evidence["matches"][-1] == {
        "line": 2,
        "class": cls.value,
        "source": res.evidence["matches"][-1]["source"],
        "text": line.strip()[:500],
    }


SHOWN = {
    LogClass.AUTH_FAILURE: "authentication failing",
    LogClass.UNKNOWN_USER: "the PBX not knowing the user",
    LogClass.FORBIDDEN: "registration forbidden",
    LogClass.MAX_CONTACTS: "the account's contact limit reached",
    LogClass.TIMEOUT_NO_RESPONSE: "registration timing out with no answer",
    LogClass.TRANSPORT_REFUSED: "the connection refused",
    LogClass.SERVER_UNAVAILABLE: "the server unavailable",
    LogClass.TLS_FAILURE: "TLS failing",
    LogClass.DNS_FAILURE: "name resolution (DNS) failing",
    LogClass.NAT_KEEPALIVE: "the contact lost between keep-alives (NAT)",
    LogClass.CONFIG_ERROR: "a configuration error",
    LogClass.DB_BACKEND: "database errors",
}


@pytest.mark.parametrize("cls", list(LINES))
def test_the_summary_says_each_class_in_words(cls: LogClass) -> None:
    res = adapter().classify(inp(client_log=LINES[cls][0]))
    assert res.summary == f"The client log shows {SHOWN[cls]}: {LINES[cls][0][:200]}"


def test_a_401_followed_by_200_is_the_normal_digest_exchange() -> None:
    log = (
        "10:00:00.100 pjsua_acc.c SIP registration failed, status=401 (Unauthorized)\n10:00:00.300 "
        "pjsua_acc.c sip:1001@pbx.example.com: registration success, status=200 (OK), will re-register in "
        "300 seconds"
    )
    res = adapter().classify(inp(client_log=log))
    assert res.outcome == "none_found"
    assert res.summary == (
        "The log ends with a successful registration (line 2); what it showed before "
        "(authentication failing) is over."
    )


def test_the_latest_failure_wins() -> None:
    log = "\n".join(
        [
            LINES[LogClass.DNS_FAILURE][0],
            LINES[LogClass.TIMEOUT_NO_RESPONSE][0],
            LINES[LogClass.AUTH_FAILURE][0],
        ]
    )
    res = adapter().classify(inp(client_log=log))
    assert res.outcome == "auth_failure" and res.evidence["class_counts"] == {
        "dns_failure": 1,
        "timeout_no_response": 1,
        "auth_failure": 1,
    }


def test_nothing_known_is_none_found() -> None:
    assert adapter().classify(inp(client_log="app started\nuser opened settings")).outcome == "none_found"


def test_without_any_log_a_person_is_asked() -> None:
    with pytest.raises(NotConfiguredError):
        adapter().classify(inp())


def test_the_app_backend_logs_are_read_page_by_page(app_api: Backend) -> None:
    app_api.log_page = 1
    app_api.devices[0].log = ["09:58:00 app start", LINES[LogClass.TLS_FAILURE][0]]
    res = adapter(app_api).classify(inp())
    assert res.outcome == "tls_failure" and res.evidence["app_log_lines"] == 2


def test_an_extra_catalogue_adds_a_signature_without_code(tmp_path: Path) -> None:
    extra = tmp_path / "more.yaml"
    extra.write_text(
        "signatures:\n  - {class: nat_keepalive, source: acme, pattern: 'ACME keepalive lost'}\n"
    )
    assert (
        adapter(extra=extra).classify(inp(client_log="12:00 ACME keepalive lost on wifi")).outcome
        == "nat_keepalive"
    )
    assert len(load_catalogue(extra)) == len(builtin()) + 1


@pytest.mark.parametrize(
    "text, problem",
    [
        ("signatures:\n  - {class: gremlins, pattern: 'x'}\n", "entry 1"),
        ("signatures:\n  - {class: dns_failure, pattern: '(unclosed'}\n", "bad pattern"),
        ("just text", "expected a mapping"),
    ],
)
def test_a_bad_extra_catalogue_is_a_settings_error(tmp_path: Path, text: str, problem: str) -> None:
    extra = tmp_path / "bad.yaml"
    extra.write_text(text)
    with pytest.raises(SettingsError, match=problem):
        adapter(extra=extra)
