"""The diagnosis: a corpus of findings -> the expected leading cause (conflicting and partial
evidence included), a test that fails when a shipped rule leads in no row, and the rules file's
validation."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from playbook import diagnosis, facts
from playbook.errors import PlaybookError

RULES = diagnosis.load_rules()

# findings (space-separated name=value) -> the leading cause
CORPUS = [
    # Asterisk stopped: ARI and SIP refuse
    ("ari=refused sip_port=refuses", "asterisk_down"),
    ("ari=refused", "asterisk_down"),  # partial: only ARI seen (level 1's account look-up)
    ("ari=timeout sip_port=silent", "asterisk_down"),
    ("ari=refused sip_port=refuses server_path=tcp_refused device_path=tcp_refused", "asterisk_down"),
    # conflicting: ARI refused but the app is registered -> nothing stands out
    ("ari=refused registration=registered", "unknown"),
    # res_pjsip not running: ARI answers, SIP refuses
    ("ari=reachable sip_port=refuses", "sip_stack_down"),
    ("ari=reachable pjsip=not_running", "sip_stack_down"),
    ("pjsip=missing sip_port=silent ari=reachable", "sip_stack_down"),
    # a stopped registrar leaves res_pjsip answering OPTIONS: still the SIP stack
    ("ari=reachable pjsip=not_running sip_port=answers", "sip_stack_down"),
    # conflicting: the modules run, yet the SIP port refuses
    ("ari=reachable pjsip=running sip_port=refuses", "unknown"),
    # the realtime database is down: look-ups slow and 404, writes 403
    ("ari=reachable config_lookup=not_found config_lookup_ms=3100 account=missing", "realtime_db_down"),
    ("ari=reachable realtime_db=unreachable account=missing", "realtime_db_down"),
    ("ari=reachable realtime_db=link_down", "realtime_db_down"),
    (
        "ari=reachable config_lookup=not_found config_lookup_ms=2500 account=missing user_known_app=true "
        "config_writable=false",
        "realtime_db_down",
    ),
    ("log_class=db_backend", "realtime_db_down"),
    # slow but answering
    ("ari=reachable realtime_db=slow realtime_db_ms=900 config_lookup=found", "pbx_overloaded"),
    ("ari=reachable config_lookup=found config_lookup_ms=2200", "pbx_overloaded"),
    ("log_class=server_unavailable registration_error=unavailable", "pbx_overloaded"),
    # 503s with the database link down and account look-ups fast: the database, not overload
    (
        "ari=reachable pjsip=running realtime_db=link_down config_lookup=found config_lookup_ms=2 "
        "server_path=ok log_class=server_unavailable registration_error=unavailable",
        "realtime_db_down",
    ),
    # the user's network blocks the PBX: connbot reaches it, the device does not
    ("server_path=ok sip_port=answers device_path=tcp_timeout", "user_network_blocked"),
    ("server_path=ok device_path=unreachable registration_error=timeout", "user_network_blocked"),
    # partial: no device test, the app times out while connbot gets through -> not enough
    ("server_path=ok registration_error=timeout", "unknown"),
    # the network in front of the PBX: both fail
    ("server_path=tcp_timeout device_path=tcp_timeout", "server_network_fault"),
    ("server_path=sip_no_response", "server_network_fault"),
    # a stopped SIP stack explains SIP's failure: the network is not blamed
    ("server_path=sip_no_response sip_port=refuses ari=reachable pjsip=not_running", "sip_stack_down"),
    # a refusal is an answer from the PBX's address: not by itself a broken network
    (
        "server_path=unreachable device_path=unreachable sip_port=refuses ari=reachable pjsip=running",
        "unknown",
    ),
    # the client log alone names a NAT problem; the device's own test failing points elsewhere
    ("server_path=ok device_path=ok log_class=nat_keepalive", "nat_keepalive"),
    ("server_path=ok device_path=tcp_timeout log_class=nat_keepalive", "user_network_blocked"),
    ("server_path=unreachable device_path=unsupported", "server_network_fault"),
    # TLS trust
    ("server_path=tls_expired", "tls_trust"),
    ("server_path=ok log_class=tls_failure", "tls_trust"),
    ("device_path=tls_untrusted registration_error=tls", "tls_trust"),
    # DNS
    ("server_path=dns_failure", "dns"),
    ("app_config=unresolvable_host", "dns"),
    ("device_path=dns_failure server_path=ok registration_error=dns", "dns"),
    # wrong settings
    ("app_config=wrong_port", "wrong_settings"),
    ("app_config=wrong_transport server_path=ok", "wrong_settings"),
    # the account
    (
        "ari=reachable account=missing user_known_app=true realtime_db=ok config_lookup=not_found "
        "config_lookup_ms=12",
        "account_missing",
    ),
    ("account=missing", "account_missing"),
    # conflicting: missing, but the look-up was slow and the database link down -> the database
    ("account=missing realtime_db=link_down", "realtime_db_down"),
    ("account=incomplete account_missing=auth_1001 ari=reachable", "account_incomplete"),
    # the endpoint sets no AOR: nothing to create, the endpoint itself is to be set
    ("account=incomplete endpoint_unset=AOR ari=reachable", "endpoint_unset"),
    # a registration holds the account's one place and the PBX answers the app 403
    ("account=exists contacts_full=true registration_error=forbidden credentials=match", "contact_limit"),
    ("log_class=max_contacts", "contact_limit"),
    # the AOR has room: a 403 is not the contact limit
    ("account=exists contacts_full=false registration_error=forbidden", "unknown"),
    ("credentials=password_mismatch", "password_mismatch"),
    ("credentials=realm_mismatch log_class=auth_failure", "password_mismatch"),
    ("account=exists log_class=auth_failure registration_error=auth", "password_mismatch"),
    # conflicting: the log says auth, but the credentials match -> not the password
    ("credentials=match log_class=auth_failure", "unknown"),
    # nobody knows this user (a typo)
    ("user_known_app=false user_known_pbx=false account=missing", "unknown_user"),
    ("user_known_app=false account=missing ari=reachable realtime_db=ok", "unknown_user"),
    # the account exists (created, perhaps), but the app backend has no device of the user
    ("user_known_app=false user_known_pbx=true account=exists", "app_device_missing"),
    # temporary
    ("reconnect=registered", "transient"),
    ("registration=failed reconnect=registered", "transient"),
    # nothing at all, or nothing that means anything
    ("", "unknown"),
    ("server_path=ok sip_port=answers ari=reachable pjsip=running realtime_db=ok", "unknown"),
]


def findings(text: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in text.split():
        name, _, value = item.partition("=")
        out[name] = [value.replace("_", " ")] if name in ("account_missing", "endpoint_unset") else value
    return out


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(("facts", "expected"), CORPUS, ids=[c[0] or "nothing" for c in CORPUS])
def test_leading_cause(facts: str, expected: str) -> None:
    causes = diagnosis.diagnose(RULES, findings(facts))
    assert causes[0].id == expected, [(c.id, c.confidence) for c in causes]


def test_a_stopped_sip_stack_is_not_also_blamed_on_the_network() -> None:
    """SIP fails because PJSIP does not run: the hand-over of a stopped SIP stack does not offer a
    broken network in front of the PBX as a candidate; with PJSIP running it does."""
    seen = "server_path=sip_no_response device_path=sip_no_response sip_port=refuses ari=reachable pjsip="
    stopped = diagnosis.diagnose(RULES, findings(seen + "not_running"))
    assert stopped[0].id == "sip_stack_down"
    assert "server_network_fault" not in {c.id for c in stopped if c.confidence > 0}
    running = diagnosis.diagnose(RULES, findings(seen + "running"))
    assert any(c.id == "server_network_fault" and c.confidence > 0 for c in running)


def test_503s_do_not_outrank_a_database_link_found_down() -> None:
    """database_down after the client logs: 503s in the log and from the app, while res_config_pgsql.so
    is found not running and look-ups answer in 2 ms. The direct finding leads; overload is not offered
    as a candidate, and nothing is said to be slow."""
    seen = (
        "ari=reachable sip_port=answers pjsip=running realtime_db=link_down config_lookup=found "
        "config_lookup_ms=2 server_path=ok device_path=ok log_class=server_unavailable "
        "registration_error=unavailable"
    )
    causes = diagnosis.diagnose(RULES, {**findings(seen), "pbx": "pbx1"})
    assert causes[0].id == "realtime_db_down"
    assert [c.id for c in causes if c.confidence > 0] == ["realtime_db_down"]
    overload = next(c for c in causes if c.id == "pbx_overloaded")
    assert overload.contrary == (
        "the realtime database is cut off from Asterisk (its link module is down)",
        "account look-ups take 2 ms",
    )


@pytest.mark.parametrize(
    ("seen", "said"),
    [
        # 503s only: signs of overload, not a measured slowness
        (
            "log_class=server_unavailable registration_error=unavailable",
            "Asterisk on pbx1 shows signs of overload: the log shows 503 Service Unavailable; the app was "
            "answered 503",
        ),
        # only the registrar stopped, SIP answers: not "its SIP stack does not run"
        (
            "ari=reachable sip_port=answers pjsip=not_running pjsip_stopped=res_pjsip_registrar.so",
            "Asterisk on pbx1 runs, but not all of its SIP stack does: res_pjsip_registrar.so not running",
        ),
        ("ari=reachable pjsip=missing pjsip_stopped=chan_pjsip.so", "chan_pjsip.so not loaded"),
        ("reconnect=registered", "The failure did not last: the app reconnected and registered"),
        (
            "account=exists registration_error=auth credentials=password_mismatch",
            "the app failed to authenticate",
        ),
    ],
)
def test_what_a_leading_cause_says_holds_for_its_findings(seen: str, said: str) -> None:
    found = {k: [v] if k == "pjsip_stopped" else v for k, v in findings(seen).items()}
    lead = diagnosis.diagnose(RULES, {**found, "pbx": "pbx1"})[0]
    assert said in lead.found()


def test_no_statement_or_note_adds_a_colon_to_the_sentence_it_is_in() -> None:
    """A cause's statement is followed by its notes after a colon ("…: a; b"), and notes are listed
    after one ("Against it: a; b"): a colon of their own would chain."""
    texts = [t for c in RULES.causes.values() for t in (c.says, *(k.note for k in c.support + c.against))]
    assert not [t for t in texts if ":" in t]


def test_no_cause_text_carries_markup() -> None:
    """Cause texts go to Jira wiki markup, Slack and HTML alike: none uses Markdown code spans."""
    texts = [
        t for c in RULES.causes.values() for t in (c.says, c.fix, *(k.note for k in c.support + c.against))
    ]
    assert not [t for t in texts if "`" in t]


def test_every_shipped_rule_leads_in_some_row() -> None:
    led = {diagnosis.diagnose(RULES, findings(facts))[0].id for facts, _ in CORPUS}
    assert set(RULES.causes) - led == set(), "causes no row of the corpus leads to"


def test_a_cause_says_what_supports_and_contradicts_it_in_plain_words() -> None:
    facts = findings("ari=refused sip_port=refuses sip_target=pbx1:5061/tls pbx=pbx1 registration=registered")
    cause = next(c for c in diagnosis.diagnose(RULES, facts) if c.id == "asterisk_down")
    assert cause.supporting == (
        "ARI refused connbot's connection",
        "SIP pbx1:5061/tls refused the connection",
    )
    assert cause.contrary == ("the app is registered",)
    assert cause.confidence == pytest.approx(0.0)
    lead = diagnosis.diagnose(
        RULES, findings("ari=refused sip_port=refuses sip_target=pbx1:5061/tls pbx=pbx1")
    )[0]
    assert lead.question() == (
        "Asterisk on pbx1 does not answer: ARI refused connbot's connection; SIP pbx1:5061/tls refused "
        "the connection. Start or restart Asterisk on pbx1"
        "; if it runs, check the host's firewall, which refuses connections the same way."
    )


def test_findings_that_do_not_fit_are_ignored_not_trusted() -> None:
    assert diagnosis.diagnose(RULES, {"ari": "on fire", "config_lookup_ms": "slow"})[0].id == "unknown"


def test_a_diagnosis_asked_again_follows_the_findings_as_they_are_now() -> None:
    """Ranked causes are kept per distinct findings: asked again of changed findings (a number
    crossing a threshold, a list grown, a fact that is no finding), the answer is theirs; findings
    of a shape no key can hold are still diagnosed; the rules compare as before."""
    slow = findings("config_lookup=found realtime_db=ok")
    ranked = [
        diagnosis.diagnose(RULES, {**slow, "config_lookup_ms": ms})[0].found() for ms in (200, 2500, 200)
    ]
    assert ranked[0] == ranked[2] != ranked[1] and "2500 ms" in ranked[1], ranked
    stopped = findings("ari=reachable pjsip=not_running pbx=pbx1")
    one, two = (
        diagnosis.diagnose(RULES, {**stopped, "pjsip_stopped": names})[0].found()
        for names in (["res_pjsip.so"], ["res_pjsip.so", "chan_pjsip.so"])
    )
    assert "chan_pjsip.so" in two and "chan_pjsip.so" not in one, (one, two)
    assert diagnosis.diagnose(RULES, {**stopped, "replied": {"received": "now"}}) == diagnosis.diagnose(
        RULES, stopped
    ), "facts that are no findings do not change the diagnosis"
    assert diagnosis.diagnose(RULES, {**stopped, "pjsip_stopped": [{"a": 1}]})[0].id == "sip_stack_down"
    assert diagnosis.load_rules() == RULES, "what a diagnosis keeps is not part of the rules"


# -- the rules file: validated at load, extendable by a team
def _rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_team_adds_a_cause_and_it_leads(tmp_path: Path) -> None:
    extra = _rules(
        tmp_path,
        """
causes:
  sbc_blocks:
    title: The SBC blocks the user
    level: 2
    says: The session border controller drops the user's packets
    fix: Whitelist the user's network on the SBC.
    support:
      - {when: {server_path: ok, device_path: tcp_timeout}, weight: 1, note: "only the device times out"}
""",
    )
    rules = diagnosis.load_rules(extra)
    assert "asterisk_down" in rules.causes and "sbc_blocks" in rules.causes
    assert diagnosis.diagnose(rules, findings("server_path=ok device_path=tcp_timeout"))[0].id == "sbc_blocks"


def test_a_team_file_replaces_the_rules(tmp_path: Path) -> None:
    extra = _rules(
        tmp_path,
        """
causes:
  anything:
    title: Something
    says: something
    fix: look
    support: [{when: {ari: refused}, weight: 1, note: ARI refused}]
  nothing:
    title: Nothing
    says: nothing
    fix: look
    fallback: true
""",
    )
    rules = diagnosis.load_rules(extra, replace=True)
    assert list(rules.causes) == ["anything", "nothing"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "causes: {x: {title: X, says: x, fix: y, support: [{when: {arii: refused}, weight: 1, "
            "note: n}]}}",
            "cause x: support.0.when: unknown finding 'arii'",
        ),
        (
            "causes: {x: {title: X, says: x, fix: y, support: [{when: {ari: sleepy}, weight: 1, note: n}]}}",
            "cause x: support.0.when: ari: 'sleepy' is not a possible value",
        ),
        (
            "causes: {x: {title: X, says: x, fix: y, support: [{when: {ari: refused}, weight: 2, note: n}]}}",
            "cause x: support.0.weight: Input should be less than or equal to 1",
        ),
        (
            "causes: {x: {title: X, says: 'on {host}', fix: y, support: [{when: {ari: refused}, "
            "weight: 1, note: n}]}}",
            "cause x: says: {host} is not a finding",
        ),
        (
            "causes: {x: {title: X, says: x, fix: y}}",
            "cause x: a cause without support clauses is never found",
        ),
        (
            "causes: {x: {title: X, says: x, fix: y, support: [{when: {config_lookup_ms: {gt: fast}}, "
            "weight: 1, note: n}]}}",
            "cause x: support.0.when: config_lookup_ms: gt needs a number",
        ),
    ],
)
def test_rules_are_validated_naming_the_cause_and_field(tmp_path: Path, body: str, problem: str) -> None:
    with pytest.raises(PlaybookError) as err:
        diagnosis.load_rules(_rules(tmp_path, body), replace=True)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_a_causes_sentences_say_the_findings_in_words_not_codes() -> None:
    cause = diagnosis.diagnose(RULES, findings("realtime_db=link_down pbx=pbx1"))[0]
    assert cause.id == "realtime_db_down"
    assert "the realtime database is cut off from Asterisk (its link module is down)" in cause.found()
    assert cause.found().startswith(
        "Asterisk on pbx1 cannot use its realtime database: the realtime database is "
    )
    network = diagnosis.diagnose(RULES, findings("server_path=sip_no_response device_path=tcp_timeout"))[0]
    assert "connbot's probes find no answer to SIP OPTIONS" in network.found()
    assert "the device's own test finds a connection that times out too" in network.found()
    for said in (cause.question(), network.question()):
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", said), said


def _codes(annotation: object) -> set[str]:
    if isinstance(annotation, str):
        return {annotation}
    return {code for arg in typing.get_args(annotation) for code in _codes(arg)}


def test_every_code_of_a_finding_said_in_words_has_its_words() -> None:
    for name, words in facts.WORDS.items():
        assert _codes(facts.Findings.model_fields[name].annotation) <= set(words), name
