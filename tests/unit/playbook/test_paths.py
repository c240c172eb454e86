"""Every path of the shipped playbook: each row gives the outcomes and expects the steps visited
and the end. The last test fails when an edge of the YAML is taken by no row."""

from __future__ import annotations

import pytest

from integrations.base import Registry, discover
from playbook import engine, loader

PB = loader.load(None, Registry(discover()).catalogue)

# Prefixes: the outcomes that bring a run to a point of the playbook, and the steps on the way.
TO_CONFIG = "check_status=failed force_reconnect=still_failing record_error=found"
TO_CONFIG_STEPS = "check_status force_reconnect record_error check_config"
TO_ACCOUNT = f"{TO_CONFIG} check_config=ok"
TO_ACCOUNT_STEPS = f"{TO_CONFIG_STEPS} check_account"
TO_L2 = f"{TO_ACCOUNT} check_account=exists compare_password=match"
TO_L2_STEPS = f"{TO_ACCOUNT_STEPS} compare_password escalate_l2 check_network"
TO_SERVICES = f"{TO_L2} check_network=ok"
TO_SERVICES_STEPS = f"{TO_L2_STEPS} check_asterisk"
TO_LOGS = f"{TO_SERVICES} check_asterisk=up check_database=db_ok"
TO_LOGS_STEPS = f"{TO_SERVICES_STEPS} check_database read_client_logs"
L3 = "escalate to level 3"

ROWS = [
    # first level: the reconnection fixes it, whatever the status said
    *[
        (
            f"check_status={o} force_reconnect=reconnected",
            "check_status force_reconnect close_transient",
            "close",
        )
        for o in ("registered", "registering", "unregistered", "failed", "unknown", "device_offline", "ERROR")
    ],
    # the reconnection does not help: the error message, then the configuration
    *[
        (
            f"check_status=failed force_reconnect={o} record_error=none check_config=wrong_port "
            "fix_config=fixed_connected",
            f"{TO_CONFIG_STEPS} fix_config close_config_fixed",
            "close",
        )
        for o in ("still_failing", "device_offline", "timeout", "ERROR")
    ],
    *[
        (
            f"check_status=failed force_reconnect=timeout record_error={o} check_config=wrong_host "
            "fix_config=fixed_connected",
            f"{TO_CONFIG_STEPS} fix_config close_config_fixed",
            "close",
        )
        for o in ("found", "ERROR")
    ],
    *[
        (
            f"{TO_CONFIG} check_config={o} fix_config=fixed_connected",
            f"{TO_CONFIG_STEPS} fix_config close_config_fixed",
            "close",
        )
        for o in ("wrong_transport", "wrong_username", "wrong_domain", "unresolvable_host")
    ],
    # the fix does not help, or cannot be made: a person fixes it, or the account is next
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=fixed_still_failing check_account=missing "
        "create_account=created",
        f"{TO_CONFIG_STEPS} fix_config check_account create_account close_account_fixed",
        "close",
    ),
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=forbidden fix_config_by_hand=connected",
        f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand close_config_fixed",
        "close",
    ),
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=ERROR fix_config_by_hand=still_failing "
        "check_account=missing create_account=created",
        f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand check_account create_account close_account_fixed",
        "close",
    ),
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=forbidden fix_config_by_hand=TIMEOUT "
        "check_account=missing create_account=created",
        f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand check_account create_account close_account_fixed",
        "close",
    ),
    (
        f"{TO_CONFIG} check_config=ERROR check_account=missing create_account=created",
        f"{TO_CONFIG_STEPS} check_account create_account close_account_fixed",
        "close",
    ),
    # the account: missing (create it, or a person does), incomplete, or the check fails
    *[
        (
            f"{TO_ACCOUNT} check_account=missing create_account={o} fix_account_by_hand=resolved",
            f"{TO_ACCOUNT_STEPS} create_account fix_account_by_hand close_account_fixed",
            "close",
        )
        for o in (
            "forbidden_readonly_backend",
            "write_denied",
            "invalid_fields",
            "REJECTED",
            "TIMEOUT",
            "ERROR",
        )
    ],
    (
        f"{TO_ACCOUNT} check_account=incomplete fix_account_by_hand=not_resolved check_network=ok "
        "check_asterisk=up check_database=db_ok read_client_logs=none_found",
        f"{TO_ACCOUNT_STEPS} fix_account_by_hand escalate_l2 check_network check_asterisk check_database "
        "read_client_logs escalate_l3",
        L3,
    ),
    (
        f"{TO_ACCOUNT} check_account=incomplete fix_account_by_hand=TIMEOUT check_network=ok "
        "check_asterisk=up check_database=db_ok read_client_logs=none_found",
        f"{TO_ACCOUNT_STEPS} fix_account_by_hand escalate_l2 check_network check_asterisk check_database "
        "read_client_logs escalate_l3",
        L3,
    ),
    (
        f"{TO_ACCOUNT} check_account=ERROR check_network=ok check_asterisk=up check_database=db_ok "
        "read_client_logs=none_found",
        f"{TO_ACCOUNT_STEPS} escalate_l2 check_network check_asterisk check_database read_client_logs "
        "escalate_l3",
        L3,
    ),
    # the password
    (
        f"{TO_ACCOUNT} check_account=exists compare_password=password_mismatch "
        "reset_password=updated_connected",
        f"{TO_ACCOUNT_STEPS} compare_password reset_password close_password_fixed",
        "close",
    ),
    *[
        (
            f"{TO_ACCOUNT} check_account=exists compare_password={o} fix_account_by_hand=resolved",
            f"{TO_ACCOUNT_STEPS} compare_password fix_account_by_hand close_account_fixed",
            "close",
        )
        for o in ("username_mismatch", "realm_mismatch")
    ],
    *[
        (
            f"{TO_ACCOUNT} check_account=exists compare_password={o} check_password_by_hand=mismatch "
            "reset_password=updated_connected",
            f"{TO_ACCOUNT_STEPS} compare_password check_password_by_hand reset_password close_password_fixed",
            "close",
        )
        for o in ("unknown", "ERROR")
    ],
    *[
        (
            f"{TO_ACCOUNT} check_account=exists compare_password=unknown check_password_by_hand={o} "
            "check_network=ok check_asterisk=up check_database=db_ok read_client_logs=none_found",
            f"{TO_ACCOUNT_STEPS} compare_password check_password_by_hand escalate_l2 check_network "
            "check_asterisk check_database read_client_logs escalate_l3",
            L3,
        )
        for o in ("same", "TIMEOUT")
    ],
    *[
        (
            f"{TO_ACCOUNT} check_account=exists compare_password=password_mismatch reset_password={o} "
            "check_network=ok check_asterisk=up check_database=db_ok read_client_logs=none_found",
            f"{TO_ACCOUNT_STEPS} compare_password reset_password escalate_l2 check_network check_asterisk "
            "check_database read_client_logs escalate_l3",
            L3,
        )
        for o in ("updated_still_failing", "forbidden", "REJECTED", "TIMEOUT", "ERROR")
    ],
    # second level: the network
    *[
        (
            f"{TO_L2} check_network={o} fix_network=fixed",
            f"{TO_L2_STEPS} fix_network close_network_fixed",
            "close",
        )
        for o in (
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
        )
    ],
    *[
        (
            f"{TO_L2} check_network=degraded fix_network={o} check_asterisk=up check_database=db_ok "
            "read_client_logs=none_found",
            f"{TO_L2_STEPS} fix_network check_asterisk check_database read_client_logs escalate_l3",
            L3,
        )
        for o in ("not_fixed", "TIMEOUT")
    ],
    (
        f"{TO_L2} check_network=ERROR check_asterisk=up check_database=no_database "
        "read_client_logs=none_found",
        f"{TO_L2_STEPS} check_asterisk check_database read_client_logs escalate_l3",
        L3,
    ),
    # second level: the server services
    *[
        (
            f"{TO_SERVICES} check_asterisk={o} restore_services=fixed",
            f"{TO_SERVICES_STEPS} restore_services close_services_fixed",
            "close",
        )
        for o in ("down", "auth_error", "module_not_running", "module_missing", "ERROR")
    ],
    *[
        (
            f"{TO_SERVICES} check_asterisk=up check_database={o} restore_services=fixed",
            f"{TO_SERVICES_STEPS} check_database restore_services close_services_fixed",
            "close",
        )
        for o in (
            "db_unreachable",
            "db_slow",
            "db_schema_missing",
            "asterisk_db_link_down",
            "module_not_loaded",
            "ERROR",
        )
    ],
    *[
        (
            f"{TO_SERVICES} check_asterisk=down restore_services={o} read_client_logs=none_found",
            f"{TO_SERVICES_STEPS} restore_services read_client_logs escalate_l3",
            L3,
        )
        for o in ("not_fixed", "TIMEOUT")
    ],
    # second level: the client logs, then the third level
    (TO_LOGS + " read_client_logs=none_found", f"{TO_LOGS_STEPS} escalate_l3", L3),
    (TO_LOGS + " read_client_logs=ERROR", f"{TO_LOGS_STEPS} escalate_l3", L3),
    *[
        (
            f"{TO_LOGS} read_client_logs={o} act_on_logs=fixed",
            f"{TO_LOGS_STEPS} act_on_logs close_logs_fixed",
            "close",
        )
        for o in (
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
        )
    ],
    *[
        (
            f"{TO_LOGS} read_client_logs=auth_failure act_on_logs={o}",
            f"{TO_LOGS_STEPS} act_on_logs escalate_l3",
            L3,
        )
        for o in ("not_fixed", "TIMEOUT")
    ],
]


def answers(outcomes: str) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for item in outcomes.split():
        step, _, value = item.partition("=")
        result.setdefault(step, []).append(value)
    return result


def walk(outcomes: str) -> tuple[list[tuple[str, str]], engine.Finish]:
    return engine.simulate(PB, answers(outcomes))


@pytest.mark.parametrize(("outcomes", "steps", "end"), ROWS)
def test_path(outcomes: str, steps: str, end: str) -> None:
    path, finish = walk(outcomes)
    assert [step for step, _ in path] == steps.split()
    assert path[-1][1] == end
    assert finish.kind == ("close" if end == "close" else "escalate")


def _edge(step: str, value: str) -> str | None:
    s = PB.steps[step]
    if value.startswith("escalate to level") and s.then:
        return "then"
    if value in s.outcomes:
        return f"outcome {value!r}"
    return {
        "ERROR": "on_failure" if s.on_failure else "on_timeout",
        "TIMEOUT": "on_timeout" if s.on_timeout else "on_failure",
        "REJECTED": "on_rejected",
    }.get(value)


def test_every_edge_of_the_playbook_is_walked_by_a_row() -> None:
    walked = set()
    for outcomes, _, _ in ROWS:
        path, _ = walk(outcomes)
        walked |= {(step, _edge(step, value)) for step, value in path if _edge(step, value)}
    every = {(src, label) for src, label, _ in engine.edges(PB)}
    assert every - walked == set(), "edges no row walks"
