"""Findings: the typed facts adapters observe, and the conditions that rules and steps test them with.

A finding is one observation with a closed vocabulary (`ari: refused`, `sip_port: answers`,
`config_lookup_ms: 3120`). Adapters put findings into `ActionResult.facts` beside the ids they
pass on (device_id, ...); a run accumulates them, the later observation of a name replacing the
earlier one. The diagnosis (playbook.diagnosis) and the playbook's `decided` clauses read them
through `Condition`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PATH = Literal[
    "ok",
    "dns_failure",
    "tcp_refused",
    "tcp_timeout",
    "unreachable",
    "tls_expired",
    "tls_untrusted",
    "tls_hostname_mismatch",
    "tls_handshake_failed",
    "sip_no_response",
    "degraded",
]


class Findings(BaseModel):
    """Every finding an adapter may report; each is optional (not observed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pbx: str | None = Field(None, max_length=200, description="the PBX the run is about (name or host)")
    ari: Literal["reachable", "refused", "timeout", "unauthorised", "error"] | None = Field(
        None, description="how Asterisk's REST interface answered connbot"
    )
    sip_port: Literal["answers", "refuses", "silent"] | None = Field(
        None, description="the PBX's SIP port, probed from connbot's host"
    )
    sip_target: str | None = Field(None, max_length=200, description="host:port/transport probed")
    pjsip: Literal["running", "not_running", "missing"] | None = Field(
        None, description="Asterisk's PJSIP modules (res_pjsip, registrar, chan_pjsip)"
    )
    pjsip_stopped: list[str] | None = Field(None, max_length=20)
    config_lookup: Literal["found", "not_found", "error"] | None = Field(
        None, description="an ARI configuration look-up of the user's objects"
    )
    config_lookup_ms: float | None = Field(None, ge=0, description="the slowest such look-up")
    config_lookup_status: int | None = Field(None, ge=100, le=599)
    config_writable: bool | None = Field(None, description="whether the PBX accepted (or refused) a write")
    realtime_db: Literal["ok", "unreachable", "slow", "schema_missing", "link_down", "none"] | None = None
    realtime_db_ms: float | None = Field(None, ge=0)
    account: Literal["exists", "missing", "incomplete"] | None = None
    account_missing: list[str] | None = Field(
        None,
        max_length=20,
        description="objects of the user's account not found: those its endpoint names, or of a missing "
        "account all three (auth, AOR, endpoint)",
    )
    endpoint_unset: list[Literal["auth", "AOR"]] | None = Field(
        None,
        max_length=2,
        description="what the user's endpoint names none of: creating objects cannot complete such an "
        "account, only setting the endpoint can",
    )
    contacts_full: bool | None = Field(
        None,
        description="the user's AOR takes one contact and keeps it (max_contacts 1, remove_existing off), "
        "and one is registered: the PBX refuses the app's registration (403)",
    )
    credentials: Literal["match", "password_mismatch", "username_mismatch", "realm_mismatch"] | None = None
    app_config: (
        Literal[
            "ok",
            "wrong_host",
            "wrong_port",
            "wrong_transport",
            "wrong_username",
            "wrong_domain",
            "unresolvable_host",
        ]
        | None
    ) = None
    registration: (
        Literal["registered", "registering", "unregistered", "failed", "unknown", "device_offline"] | None
    ) = Field(None, description="the device's registration state")
    registration_error: (
        Literal[
            "none",
            "auth",
            "not_found",
            "forbidden",
            "timeout",
            "refused",
            "tls",
            "dns",
            "unavailable",
            "network_down",
            "other",
        ]
        | None
    ) = Field(None, description="the class of the device's last registration error")
    reconnect: Literal["registered", "failing", "timeout", "device_offline"] | None = Field(
        None, description="the forced reconnection of the first level"
    )
    recheck: Literal["registered", "failing", "timeout", "device_offline"] | None = Field(
        None, description="the reconnection connbot makes to check a fix"
    )
    device_path: PATH | Literal["unsupported"] | None = Field(
        None, description="the device-side network test (from the user's network)"
    )
    server_path: PATH | None = Field(None, description="the probes from connbot's host")
    log_class: (
        Literal[
            "none_found",
            "auth_failure",
            "unknown_user",
            "forbidden",
            "max_contacts",
            "timeout_no_response",
            "transport_refused",
            "server_unavailable",
            "tls_failure",
            "dns_failure",
            "nat_keepalive",
            "config_error",
            "db_backend",
        ]
        | None
    ) = None
    user_known_app: bool | None = Field(None, description="the app backend knows the user")
    user_known_pbx: bool | None = Field(None, description="the PBX has an endpoint for the user")

    @field_validator("pjsip_stopped", "account_missing")
    @classmethod
    def _short_items(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [str(v)[:100] for v in value]


NAMES = frozenset(Findings.model_fields)

_PATH_WORDS = {
    "ok": "fine",
    "dns_failure": "a name that does not resolve",
    "tcp_refused": "a refused connection",
    "tcp_timeout": "a connection that times out",
    "unreachable": "an unreachable host or port",
    "tls_expired": "an expired certificate",
    "tls_untrusted": "an untrusted certificate",
    "tls_hostname_mismatch": "a certificate for another name",
    "tls_handshake_failed": "a failed TLS handshake",
    "sip_no_response": "no answer to SIP OPTIONS",
    "degraded": "a degraded path",
    "unsupported": "no network test in the app",
}
# How a finding's value reads in a sentence (a cause's statement or note: `{realtime_db}`), where its
# code would not; the codes stay what the findings hold and show as data.
WORDS: dict[str, dict[str, str]] = {
    "ari": {
        "reachable": "answers connbot",
        "refused": "refuses connbot's connection",
        "timeout": "does not answer in time",
        "unauthorised": "refuses connbot's credentials",
        "error": "answers with an error",
    },
    "realtime_db": {
        "ok": "answering",
        "unreachable": "unreachable",
        "slow": "slow",
        "schema_missing": "missing Asterisk's tables",
        "link_down": "cut off from Asterisk (its link module is down)",
        "none": "not used",
    },
    "server_path": _PATH_WORDS,
    "device_path": _PATH_WORDS,
    "app_config": {
        "ok": "right",
        "wrong_host": "the wrong server",
        "wrong_port": "the wrong port",
        "wrong_transport": "the wrong transport",
        "wrong_username": "the wrong user name",
        "wrong_domain": "the wrong domain",
        "unresolvable_host": "a server name that does not resolve",
    },
    "credentials": {
        "match": "they match",
        "password_mismatch": "the password differs",
        "username_mismatch": "the user name differs",
        "realm_mismatch": "the realm differs",
    },
    "log_class": {
        "none_found": "no known failure",
        "auth_failure": "authentication failing",
        "unknown_user": "the PBX not knowing the user",
        "forbidden": "registration forbidden",
        "max_contacts": "the account's contact limit reached",
        "timeout_no_response": "registration timing out with no answer",
        "transport_refused": "the connection refused",
        "server_unavailable": "the server unavailable",
        "tls_failure": "TLS failing",
        "dns_failure": "name resolution (DNS) failing",
        "nat_keepalive": "the contact lost between keep-alives (NAT)",
        "config_error": "a configuration error",
        "db_backend": "database errors",
    },
    "registration_error": {
        "none": "no error",
        "auth": "an authentication failure",
        "not_found": "404 Not Found",
        "forbidden": "403 Forbidden",
        "timeout": "a timeout",
        "refused": "a refused connection",
        "tls": "a TLS error",
        "dns": "a DNS error",
        "unavailable": "503 Service Unavailable",
        "network_down": "no network",
        "other": "an error",
    },
}
# How a finding that a step's decision tests reads in the step's row ("{}": its value in words, as
# `WORDS` say it); a finding without a phrase here reads "<its name> is <its value>", underscores
# as spaces (`sip port is refuses`): a playbook that decides by it should add one.
STATED = {
    "ari": "Asterisk's REST interface (ARI) {}",
    "realtime_db": "the realtime database is {}",
    "endpoint_unset": "the user's endpoint names no {}",
}


def in_words(name: str, value: Any) -> Any:
    """A finding as it reads in a sentence: a code in words (`WORDS`), lists joined, milliseconds
    without a trailing `.0`."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 10 else f"{value:g}"
    if isinstance(value, str):
        return WORDS.get(name, {}).get(value, value)
    return value


def stated(cond: Mapping[str, Any], found: Mapping[str, Any]) -> str:
    """The findings a condition tested, as they are, in words: `the realtime database is answering`
    (a code without words of its own without its underscores)."""
    return " and ".join(
        STATED.get(name, name.replace("_", " ") + " is {}").format(
            "not known" if found.get(name) is None else str(in_words(name, found[name])).replace("_", " ")
        )
        for name in cond
    )


LIST_FINDINGS = frozenset({"pjsip_stopped", "account_missing", "endpoint_unset"})


def written(name: str, raw: str) -> Any:
    """A finding's value as written in a command's `--fact` or a paths table: a list finding's items
    separated by commas, `true` and `false` as booleans."""
    if name in LIST_FINDINGS:
        return raw.split(",")
    return {"true": True, "false": False}.get(raw, raw)


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """The findings among `values`, type-checked; other keys (ids passed between steps) are left alone.

    Raises ValueError naming the finding and what was wrong."""
    known = {k: v for k, v in values.items() if k in NAMES}
    try:
        return Findings.model_validate(known).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"finding {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        ) from None


def findings(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The findings of a run's facts, in `Findings`' order (anything else, or a value that does not
    fit, is left out)."""
    out = {}
    for name in (n for n in Findings.model_fields if n in facts):
        try:
            out.update(check({name: facts[name]}))
        except ValueError:
            continue
    return out


# -- conditions: a mapping of finding -> test, every test must hold.
# A test is a value (equal), a list of values (any of), or one operator:
# {not: value-or-list}, {gt: n}, {ge: n}, {lt: n}, {le: n}, {present: true|false}.
OPERATORS = ("not", "gt", "ge", "lt", "le", "present")


def check_condition(cond: Any) -> list[str]:
    """Problems with a condition, each naming the finding."""
    if not isinstance(cond, dict) or not cond:
        return ["a condition is a non-empty mapping of finding: test"]
    problems = []
    for name, test in cond.items():
        if name not in NAMES:
            problems.append(f"unknown finding {name!r} (known: {', '.join(sorted(NAMES))})")
            continue
        if isinstance(test, dict):
            if len(test) != 1 or next(iter(test)) not in OPERATORS:
                problems.append(f"{name}: an operator test has one of {', '.join(OPERATORS)}")
                continue
            op, arg = next(iter(test.items()))
            if op in ("gt", "ge", "lt", "le") and (
                not isinstance(arg, (int, float)) or isinstance(arg, bool)
            ):
                problems.append(f"{name}: {op} needs a number, got {arg!r}")
            elif op == "present" and not isinstance(arg, bool):
                problems.append(f"{name}: present needs true or false, got {arg!r}")
            elif op == "not":
                problems += _check_values(name, arg)
        else:
            problems += _check_values(name, test)
    return problems


def _check_values(name: str, test: Any) -> list[str]:
    values = test if isinstance(test, list) else [test]
    problems = []
    for value in values:
        try:
            Findings.model_validate({name: value})
        except ValidationError as exc:
            problems.append(f"{name}: {value!r} is not a possible value ({exc.errors()[0]['msg']})")
    return problems


def holds(cond: Mapping[str, Any], facts: Mapping[str, Any]) -> bool | None:
    """True when every test holds, False when one fails, None when a finding it needs is absent."""
    unknown = False
    for name, test in cond.items():
        if isinstance(test, dict) and "present" in test:
            if (name in facts) != test["present"]:
                return False
            continue
        if name not in facts:
            unknown = True
            continue
        if not _test(test, facts[name]):
            return False
    return None if unknown else True


def _test(test: Any, value: Any) -> bool:
    if isinstance(test, dict):
        op, arg = next(iter(test.items()))
        if op == "not":
            return not _test(arg, value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        return bool(
            {
                "gt": value > arg,
                "ge": value >= arg,
                "lt": value < arg,
                "le": value <= arg,
            }[op]
        )
    if isinstance(test, list):
        return any(_test(t, value) for t in test)
    if isinstance(value, list):
        return test in value
    return bool(value == test)
