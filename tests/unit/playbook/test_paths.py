"""Every path of the shipped playbook: each row gives the outcomes (`step=outcome`) and the findings
a step adds when it runs (`step.finding=value`), and expects the steps visited and the end, as a
team's table for `connbot playbook test` does (`playbook.paths`; the rows here are built from
shared prefixes). The last test fails when an edge of the YAML is taken by no row."""

from __future__ import annotations

import itertools

import pytest

from integrations.base import Registry, discover
from playbook import engine, loader
from playbook.paths import parse

PB = loader.load(None, Registry(discover()).catalogue)

# Prefixes: the outcomes that bring a run to a point of the playbook, and the steps on the way.
TO_CONFIG = "check_status=failed force_reconnect=still_failing record_error=found"
TO_CONFIG_STEPS = "check_status force_reconnect record_error check_config"
TO_ACCOUNT = f"{TO_CONFIG} check_config=ok"
TO_ACCOUNT_STEPS = f"{TO_CONFIG_STEPS} check_account"
# the account looks missing; the PBX answers and its database is fine
MISSING = (
    f"{TO_ACCOUNT} check_account=missing check_account.ari=reachable check_account.account=missing "
    "check_account.user_known_app=true check_backend=db_ok check_backend.realtime_db=ok"
)
MISSING_STEPS = f"{TO_ACCOUNT_STEPS} check_backend account_gate"
TO_L2 = f"{TO_ACCOUNT} check_account=exists compare_password=match"
TO_L2_STEPS = f"{TO_ACCOUNT_STEPS} compare_password credentials_gate escalate_l2 check_network"
# the second level's checks, all passing
L2_OK = "check_network=ok check_device_network=ok check_asterisk=up check_database=db_ok"
L2_OK_STEPS = "check_network check_device_network check_asterisk check_database diagnose_l2"
TO_LOGS = f"{TO_L2} {L2_OK}"
TO_LOGS_STEPS = (
    f"{TO_L2_STEPS} check_device_network check_asterisk check_database diagnose_l2 read_client_logs"
)
# Asterisk stopped: ARI refused on the first level, the SIP port refused on the second
DOWN = (
    f"{TO_ACCOUNT} check_account=ERROR check_account.ari=refused check_account.pbx=pbx1 "
    "check_network=tcp_refused check_network.sip_port=refuses check_network.server_path=tcp_refused "
    "check_device_network=tcp_refused"
)
DOWN_STEPS = (
    f"{TO_ACCOUNT_STEPS} escalate_l2 check_network check_device_network check_asterisk diagnose_l2 fix_cause"
)
MAX = "read_client_logs.log_class=max_contacts"
L3 = "escalate to level 3"
# every failing result of the path checks, and every class of the log classifier but "nothing found"
L2_OUTCOMES = tuple(o for o in PB.steps["check_network"].outcomes if o not in ("ok", "degraded"))
LOG_CLASSES = tuple(o for o in PB.steps["read_client_logs"].outcomes if o != "none_found")
RULED = (
    "tls_failure",
    "dns_failure",
    "db_backend",
    "nat_keepalive",
)  # log classes a diagnosis rule alone makes a cause
NOT_REGISTERED = ("still_failing", "device_offline", "timeout", "ERROR")

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
    # the fix does not help, or cannot be made: a person fixes it (connbot checks), or the account is next
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=fixed_still_failing check_account=exists "
        "compare_password=password_mismatch reset_password=updated_connected",
        f"{TO_CONFIG_STEPS} fix_config check_account compare_password reset_password close_password_fixed",
        "close",
    ),
    (
        f"{TO_CONFIG} check_config=wrong_port fix_config=forbidden fix_config_by_hand=connected "
        "recheck_config=registered",
        f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand recheck_config close_config_fixed",
        "close",
    ),
    *[
        (
            f"{TO_CONFIG} check_config=wrong_port fix_config=ERROR fix_config_by_hand=connected "
            f"recheck_config={o} check_account=exists compare_password=password_mismatch "
            "reset_password=updated_connected",
            f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand recheck_config check_account compare_password "
            "reset_password close_password_fixed",
            "close",
        )
        for o in NOT_REGISTERED
    ],
    *[
        (
            f"{TO_CONFIG} check_config=wrong_port fix_config=forbidden fix_config_by_hand={o} "
            "check_account=exists compare_password=password_mismatch reset_password=updated_connected",
            f"{TO_CONFIG_STEPS} fix_config fix_config_by_hand check_account compare_password reset_password "
            "close_password_fixed",
            "close",
        )
        for o in ("still_failing", "TIMEOUT")
    ],
    (
        f"{TO_CONFIG} check_config=ERROR check_account=exists compare_password=password_mismatch "
        "reset_password=updated_connected",
        f"{TO_CONFIG_STEPS} check_account compare_password reset_password close_password_fixed",
        "close",
    ),
    # the account is missing and the PBX healthy: created with approval, then checked
    (
        f"{MISSING} create_account=created recheck_account=registered",
        f"{MISSING_STEPS} create_account recheck_account close_account_fixed",
        "close",
    ),
    # incomplete: only the missing objects are created (the same action)
    (
        f"{TO_ACCOUNT} check_account=incomplete check_account.ari=reachable check_account.account=incomplete "
        "check_backend=no_database check_backend.realtime_db=none create_account=created "
        "recheck_account=registered",
        f"{TO_ACCOUNT_STEPS} check_backend account_gate create_account recheck_account close_account_fixed",
        "close",
    ),
    # the endpoint names no auth: connbot cannot set it, so a person is asked, with no approval first
    (
        f"{TO_ACCOUNT} check_account=incomplete check_account.ari=reachable check_account.account=incomplete "
        "check_account.endpoint_unset=auth check_backend=db_ok check_backend.realtime_db=ok "
        "fix_account_by_hand=resolved recheck_account=registered",
        f"{TO_ACCOUNT_STEPS} check_backend account_gate fix_account_by_hand recheck_account "
        "close_account_fixed",
        "close",
    ),
    # the creation fails or is refused: a person does it (once), connbot checks their word
    *[
        (
            f"{MISSING} create_account={o} fix_account_by_hand=resolved recheck_account=registered",
            f"{MISSING_STEPS} create_account fix_account_by_hand recheck_account close_account_fixed",
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
    # the check after a creation fails: a person is asked once; their fix fails the check too: level 2
    *[
        (
            f"{MISSING} create_account=created recheck_account={o} fix_account_by_hand=resolved "
            f"recheck_account={o} {L2_OK} read_client_logs=none_found",
            f"{MISSING_STEPS} create_account recheck_account fix_account_by_hand recheck_account escalate_l2 "
            f"{L2_OK_STEPS} read_client_logs escalate_l3",
            L3,
        )
        for o in NOT_REGISTERED
    ],
    *[
        (
            f"{MISSING} create_account=write_denied fix_account_by_hand={o} {L2_OK} "
            "read_client_logs=none_found",
            f"{MISSING_STEPS} create_account fix_account_by_hand escalate_l2 {L2_OK_STEPS} read_client_logs "
            "escalate_l3",
            L3,
        )
        for o in ("not_resolved", "TIMEOUT")
    ],
    # the database behind Asterisk is down: nothing is created, level 2 is asked to restore it
    *[
        (
            f"{TO_ACCOUNT} check_account=missing check_account.ari=reachable check_account.account=missing "
            f"check_backend={o} check_backend.realtime_db={fact} check_network=ok check_device_network=ok "
            "check_asterisk=up fix_cause=fixed recheck_l2=registered",
            f"{TO_ACCOUNT_STEPS} check_backend account_gate escalate_l2 check_network check_device_network "
            "check_asterisk check_database diagnose_l2 fix_cause recheck_l2 close_l2_fixed",
            "close",
        )
        for o, fact in (
            ("db_unreachable", "unreachable"),
            ("asterisk_db_link_down", "link_down"),
            ("db_schema_missing", "schema_missing"),
        )
    ],
    # slow: the PBX is overloaded (the database check is decided by the first level's)
    (
        f"{TO_ACCOUNT} check_account=missing check_account.ari=reachable check_account.account=missing "
        "check_backend=db_slow check_backend.realtime_db=slow check_network=ok check_device_network=ok "
        "check_asterisk=up fix_cause=fixed recheck_l2=registered",
        f"{TO_ACCOUNT_STEPS} check_backend account_gate escalate_l2 check_network check_device_network "
        "check_asterisk check_database diagnose_l2 fix_cause recheck_l2 close_l2_fixed",
        "close",
    ),
    # the backend check tells nothing: a person creates the account by hand
    *[
        (
            f"{TO_ACCOUNT} check_account=missing check_account.ari=reachable check_account.account=missing "
            f"check_backend={o} fix_account_by_hand=resolved recheck_account=registered",
            f"{TO_ACCOUNT_STEPS} check_backend account_gate fix_account_by_hand recheck_account "
            "close_account_fixed",
            "close",
        )
        for o in ("module_not_loaded", "ERROR")
    ],
    # nobody knows the user: the reporter is asked before anything is created
    *[
        (
            f"{TO_ACCOUNT} check_account=missing check_account.ari=reachable check_account.account=missing "
            "check_account.user_known_app=false check_account.user_known_pbx=false check_backend=db_ok "
            f"check_backend.realtime_db=ok confirm_user={o}",
            f"{TO_ACCOUNT_STEPS} check_backend account_gate confirm_user {then}",
            "close",
        )
        for o, then in (
            (
                "real_user create_account=created recheck_account=registered",
                "create_account recheck_account close_account_fixed",
            ),
            ("wrong_extension", "close_wrong_extension"),
        )
    ],
    (
        f"{TO_ACCOUNT} check_account=missing check_account.user_known_app=false "
        "check_account.user_known_pbx=false check_account.account=missing check_backend=db_ok "
        f"confirm_user=TIMEOUT {L2_OK} read_client_logs=none_found",
        f"{TO_ACCOUNT_STEPS} check_backend account_gate confirm_user escalate_l2 {L2_OK_STEPS} "
        "read_client_logs "
        "escalate_l3",
        L3,
    ),
    # the account check fails (ARI does not answer): straight to level 2
    (
        f"{TO_ACCOUNT} check_account=ERROR {L2_OK} read_client_logs=none_found",
        f"{TO_ACCOUNT_STEPS} escalate_l2 {L2_OK_STEPS} read_client_logs escalate_l3",
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
            f"{TO_ACCOUNT} check_account=exists compare_password={o} fix_account_by_hand=resolved "
            "recheck_account=registered",
            f"{TO_ACCOUNT_STEPS} compare_password fix_account_by_hand recheck_account close_account_fixed",
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
            f"{L2_OK} read_client_logs=none_found",
            f"{TO_ACCOUNT_STEPS} compare_password check_password_by_hand {gate}escalate_l2 {L2_OK_STEPS} "
            "read_client_logs escalate_l3",
            L3,
        )
        for o, gate in (("same", "credentials_gate "), ("TIMEOUT", ""))
    ],
    # the credentials match, but another registration holds the account's one place: level 1 frees it
    (
        f"{TO_ACCOUNT} check_account=exists check_account.contacts_full=true compare_password=match "
        "compare_password.registration_error=forbidden free_registration=resolved recheck_account=registered",
        f"{TO_ACCOUNT_STEPS} compare_password credentials_gate free_registration recheck_account "
        "close_account_fixed",
        "close",
    ),
    *[
        (
            f"{TO_ACCOUNT} check_account=exists check_account.contacts_full=true compare_password=match "
            f"compare_password.registration_error=forbidden free_registration={o} {L2_OK} "
            "read_client_logs=none_found",
            f"{TO_ACCOUNT_STEPS} compare_password credentials_gate free_registration escalate_l2 "
            f"{L2_OK_STEPS} read_client_logs escalate_l3",
            L3,
        )
        for o in ("not_resolved", "TIMEOUT")
    ],
    *[
        (
            f"{TO_ACCOUNT} check_account=exists compare_password=password_mismatch reset_password={o} "
            f"{L2_OK} read_client_logs=none_found",
            f"{TO_ACCOUNT_STEPS} compare_password reset_password escalate_l2 {L2_OK_STEPS} read_client_logs "
            "escalate_l3",
            L3,
        )
        for o in ("updated_still_failing", "forbidden", "REJECTED", "TIMEOUT", "ERROR")
    ],
    # second level: whatever the network checks say, every check runs; with no cause, the logs next
    *[
        (
            f"{TO_L2} check_network={o} check_device_network={o} check_asterisk=up check_database=db_ok "
            "read_client_logs=none_found",
            f"{TO_LOGS_STEPS} escalate_l3",
            L3,
        )
        for o in (*L2_OUTCOMES, "ERROR")
    ],
    *[
        (
            f"{TO_L2} check_network=degraded check_device_network={o} check_asterisk=up "
            "check_database=db_ok read_client_logs=none_found",
            f"{TO_LOGS_STEPS} escalate_l3",
            L3,
        )
        for o in ("unsupported", "device_offline", "no_result")
    ],
    # the user's network blocks the PBX: connbot's probes pass, the device's own test fails
    (
        f"{TO_L2} check_network=ok check_network.server_path=ok check_device_network=tcp_timeout "
        "check_device_network.device_path=tcp_timeout check_asterisk=up check_database=db_ok "
        "fix_cause=fixed recheck_l2=registered",
        f"{TO_LOGS_STEPS.removesuffix(' read_client_logs')} fix_cause recheck_l2 close_l2_fixed",
        "close",
    ),
    # Asterisk stopped: its check is decided by the refused ARI, one question, checked after "fixed"
    (f"{DOWN} fix_cause=fixed recheck_l2=registered", f"{DOWN_STEPS} recheck_l2 close_l2_fixed", "close"),
    # ... the fix is not confirmed by the check: the logs, then level 3 without asking again
    *[
        (
            f"{DOWN} fix_cause=fixed recheck_l2={o} read_client_logs=transport_refused",
            f"{DOWN_STEPS} recheck_l2 read_client_logs diagnose_logs escalate_l3",
            L3,
        )
        for o in NOT_REGISTERED
    ],
    *[
        (
            f"{DOWN} fix_cause={o} read_client_logs=none_found",
            f"{DOWN_STEPS} read_client_logs escalate_l3",
            L3,
        )
        for o in ("not_fixed", "TIMEOUT")
    ],
    # the server services: Asterisk's modules, or the database
    *[
        (
            f"{TO_L2} check_network=ok check_device_network=ok check_asterisk={o} "
            "check_asterisk.ari=reachable check_asterisk.pjsip=not_running fix_cause=fixed "
            "recheck_l2=registered",
            f"{TO_L2_STEPS} check_device_network check_asterisk diagnose_l2 fix_cause recheck_l2 "
            "close_l2_fixed",
            "close",
        )
        for o in ("module_not_running", "module_missing")
    ],
    *[
        (
            f"{TO_L2} check_network=ok check_device_network=ok check_asterisk={o} "
            "read_client_logs=none_found",
            f"{TO_L2_STEPS} check_device_network check_asterisk diagnose_l2 read_client_logs escalate_l3",
            L3,
        )
        for o in ("down", "auth_error", "ERROR")
    ],
    *[
        (
            f"{TO_L2} check_network=ok check_device_network=ok check_asterisk=up check_database={o} "
            f"check_database.realtime_db={fact} fix_cause=fixed recheck_l2=registered",
            f"{TO_LOGS_STEPS.removesuffix(' read_client_logs')} fix_cause recheck_l2 close_l2_fixed",
            "close",
        )
        for o, fact in (
            ("db_unreachable", "unreachable"),
            ("db_slow", "slow"),
            ("db_schema_missing", "schema_missing"),
            ("asterisk_db_link_down", "link_down"),
        )
    ],
    *[
        (
            f"{TO_L2} check_network=ok check_device_network=ok check_asterisk=up check_database={o} "
            "read_client_logs=none_found",
            f"{TO_LOGS_STEPS} escalate_l3",
            L3,
        )
        for o in ("no_database", "module_not_loaded", "ERROR")
    ],
    # the client logs: a cause a rule knows is asked as such; another one as what the logs show
    (
        f"{TO_LOGS} read_client_logs=none_found",
        f"{TO_LOGS_STEPS} escalate_l3",
        L3,
    ),
    (TO_LOGS + " read_client_logs=ERROR", f"{TO_LOGS_STEPS} escalate_l3", L3),
    *[
        (
            f"{TO_LOGS} read_client_logs={o} read_client_logs.log_class={o} fix_cause=fixed "
            "recheck_l2=registered",
            f"{TO_LOGS_STEPS} diagnose_logs fix_cause recheck_l2 close_l2_fixed",
            "close",
        )
        for o in RULED
    ],
    *[
        (
            f"{TO_LOGS} read_client_logs={o} read_client_logs.log_class={o} act_on_logs=fixed "
            "recheck_l2=registered",
            f"{TO_LOGS_STEPS} diagnose_logs act_on_logs recheck_l2 close_l2_fixed",
            "close",
        )
        for o in LOG_CLASSES
        if o not in RULED
    ],
    *[
        (
            f"{TO_LOGS} read_client_logs=max_contacts {MAX} act_on_logs={o}",
            f"{TO_LOGS_STEPS} diagnose_logs act_on_logs escalate_l3",
            L3,
        )
        for o in ("not_fixed", "TIMEOUT")
    ],
    # a fix the check does not confirm: the logs were read already, so level 3
    (
        f"{TO_LOGS} read_client_logs=max_contacts {MAX} act_on_logs=fixed recheck_l2=still_failing",
        f"{TO_LOGS_STEPS} diagnose_logs act_on_logs recheck_l2 escalate_l3",
        L3,
    ),
]


def walk(outcomes: str) -> tuple[list[tuple[str, str]], engine.Finish]:
    answers, found = parse(outcomes.split())
    return engine.simulate(PB, answers, found=found)


@pytest.mark.parametrize(("outcomes", "steps", "end"), ROWS)
def test_path(outcomes: str, steps: str, end: str) -> None:
    path, finish = walk(outcomes)
    assert [step for step, _ in path] == steps.split()
    assert path[-1][1] == end
    assert finish.kind == ("close" if end == "close" else "escalate")


def _label(step: str, value: str) -> str | None:
    s = PB.steps[step]
    value = value.removeprefix(engine.DECIDED)
    if value.startswith("escalate to level") and s.then:
        return "then"
    if value in s.outcomes:
        return f"outcome {value!r}"
    if value == "otherwise":
        return "otherwise"
    if value.startswith("route "):
        return value
    return {
        "ERROR": "on_failure" if s.on_failure else "on_timeout",
        "TIMEOUT": "on_timeout" if s.on_timeout else "on_failure",
        "REJECTED": "on_rejected",
    }.get(value)


def walked_edges(path: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The edges a path took, with the `on_exhausted` edges of the steps it passed over."""
    walked = set()
    for (step, value), (following, _) in itertools.pairwise(path):
        label = _label(step, value)
        if label is None:
            continue
        walked.add((step, label))
        target = PB.steps[step].edges()[label]
        while target != following:  # visited too often: passed on to on_exhausted
            walked.add((target, "on_exhausted"))
            target = PB.steps[target].edges()["on_exhausted"]
    return walked


def test_every_edge_of_the_playbook_is_walked_by_a_row() -> None:
    walked: set[tuple[str, str]] = set()
    for outcomes, _, _ in ROWS:
        walked |= walked_edges(walk(outcomes)[0])
    every = {(src, label) for src, label, _ in engine.edges(PB)}
    assert every - walked == set(), "edges no row walks"
