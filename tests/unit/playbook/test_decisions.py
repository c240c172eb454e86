"""Steps that read the findings: `route` on the leading cause or on findings, `decided` outcomes,
`ask_cause` questions; and their validation in the loader."""

from __future__ import annotations

import pytest

from playbook import engine, loader
from playbook.errors import PlaybookError
from playbook.models import ActionSpec

CATALOGUE = {
    "pbx.health": ActionSpec("pbx.health", ("up", "down"), False, "health", ""),
    "pbx.create_account": ActionSpec("pbx.create_account", ("created",), True, "create_account", ""),
}

PLAYBOOK = """
name: tiny
title: Tiny
start: health
steps:
  health:
    title: Check Asterisk
    action: pbx.health
    decided:
      down: {ari: refused}
    outcomes: {up: gate, down: decide}
    on_failure: decide
  gate:
    title: Safe to change?
    route:
      - {cause: [realtime_db_down, asterisk_down], goto: done}
      - {facts: {ari: reachable, realtime_db: [ok, none]}, goto: create}
    otherwise: done
  create:
    title: Create the account
    action: pbx.create_account
    approval: true
    instructions: Create {account_missing}.
    outcomes: {created: done}
    on_failure: done
    on_rejected: done
    on_timeout: done
  decide:
    title: Decide
    route:
      - {cause: asterisk_down, goto: fix}
    otherwise: done
  fix:
    title: Fix it
    action: human
    ask_cause: true
    instructions: Fix the cause.
    outcomes: {fixed: done, not_fixed: done}
    on_timeout: done
  done:
    title: Done
    escalate: 2
"""

PB = loader.parse(PLAYBOOK, CATALOGUE)
DOWN = {"ari": "refused", "sip_port": "refuses", "pbx": "pbx1", "sip_target": "pbx1:5061/tls"}


def test_a_step_the_findings_answer_is_decided_not_run() -> None:
    p = engine.plan(PB, engine.start(PB), lambda _a: True, facts=DOWN)
    assert isinstance(p, engine.Decide) and (p.outcome, p.target) == ("down", "decide")
    assert (
        p.because
        == "the findings already say so: Asterisk's REST interface (ARI) refuses connbot's connection"
    )
    assert isinstance(engine.plan(PB, engine.start(PB), lambda _a: True, facts={}), engine.Execute)


def test_the_question_is_the_leading_causes_own_with_its_supporting_findings() -> None:
    path, _ = engine.simulate(PB, {"fix": ["fixed"]}, DOWN)
    assert path[:3] == [("health", "decided: down"), ("decide", "route 1"), ("fix", "fixed")]
    pos = engine.enter(PB, "fix", {})
    ask = engine.plan(PB, pos, lambda _a: True, facts=DOWN)
    assert isinstance(ask, engine.Ask) and ask.question == (
        "Asterisk on pbx1 does not answer: ARI refused connbot's connection; SIP pbx1:5061/tls refused "
        "the connection. Start or restart Asterisk on pbx1"
        "; if it runs, check the host's firewall, which refuses connections the same way."
    )


@pytest.mark.parametrize(
    ("facts", "end"),
    [
        # a PBX-side outage: an account that looks missing is never created
        ({"ari": "reachable", "realtime_db": "link_down", "account": "missing"}, "route 1"),
        ({"ari": "reachable", "config_lookup": "not_found", "config_lookup_ms": 3100}, "route 1"),
        # healthy and answering: the change is offered
        ({"ari": "reachable", "realtime_db": "ok", "account": "missing"}, "route 2"),
        # health not known: no change
        ({"account": "missing"}, "otherwise"),
    ],
)
def test_an_account_change_is_offered_only_on_a_healthy_backend(facts: dict[str, object], end: str) -> None:
    path, _ = engine.simulate(PB, {"health": ["up"], "create": ["created"]}, facts)
    assert path[1] == ("gate", end)
    assert ("create" in [s for s, _ in path]) == (end == "route 2")


def test_the_approval_tells_plainly_that_nobody_knows_the_user() -> None:
    facts = {"ari": "reachable", "realtime_db": "ok", "account": "missing", "user_known_app": False}
    facts["user_known_pbx"] = False
    ask = engine.plan(PB, engine.enter(PB, "create", {}), lambda _a: True, facts=facts)
    assert isinstance(ask, engine.Ask) and ask.kind == "approval"
    assert (
        "connbot's diagnosis: Neither the app backend nor the PBX has the user the ticket names"
        in ask.question
    )


def test_an_approval_names_what_changes_from_the_findings() -> None:
    """The instructions name findings; the approval says them in words, not the template."""
    facts = {
        "ari": "reachable",
        "realtime_db": "ok",
        "account": "incomplete",
        "account_missing": ["auth 1001"],
    }
    ask = engine.plan(PB, engine.enter(PB, "create", {}), lambda _a: True, facts=facts)
    assert isinstance(ask, engine.Ask) and ask.question.startswith(
        "If you approve, connbot will do this for the user's account: Create auth 1001. If you reject, "
    )


def test_simulate_takes_findings_a_step_adds_when_it_runs() -> None:
    path, _ = engine.simulate(
        PB,
        {"health": ["ERROR"], "fix": ["not_fixed"]},
        {},
        {"health": {"ari": "refused", "sip_port": "refuses"}},
    )
    assert path[:2] == [("health", "ERROR"), ("decide", "route 1")]


def test_simulate_rejects_a_finding_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="finding ari"):
        engine.simulate(PB, {}, {"ari": "sleepy"})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            "      - {cause: asterisk_down, goto: fix}",
            "step decide: route 1: no diagnosis rule for cause asterisk_gone",
        ),
        ("    otherwise: done\n  fix:", "step decide: a decision (route) needs otherwise"),
        ("      down: {ari: refused}", "step health: decided: 'dead' is not one of the step's outcomes"),
        ("    ask_cause: true", "step create: ask_cause goes with action: human"),
        (
            "      - {facts: {ari: reachable, realtime_db: [ok, none]}, goto: create}",
            "step gate: route 2: facts: unknown finding 'arii'",
        ),
    ],
)
def test_steps_reading_findings_are_validated(change: str, problem: str) -> None:
    broken = {
        "      - {cause: asterisk_down, goto: fix}": "      - {cause: asterisk_gone, goto: fix}",
        "    otherwise: done\n  fix:": "  fix:",
        "      down: {ari: refused}": "      dead: {ari: refused}",
        "    ask_cause: true": "    instructions: Fix the cause.",
        "      - {facts: {ari: reachable, realtime_db: [ok, none]}, goto: create}": (
            "      - {facts: {arii: reachable}, goto: create}"
        ),
    }[change]
    text = PLAYBOOK.replace(change, broken, 1)
    if change == "    ask_cause: true":
        text = text.replace("    approval: true\n", "    approval: true\n    ask_cause: true\n")
    with pytest.raises(PlaybookError) as err:
        loader.parse(text, CATALOGUE)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_a_decision_by_a_finding_without_a_phrase_reads_its_name_and_value_without_underscores() -> None:
    pb = loader.parse(
        PLAYBOOK.replace("      down: {ari: refused}", "      down: {pjsip: not_running}", 1), CATALOGUE
    )
    p = engine.plan(pb, engine.Position("health"), lambda _a: True, facts={"pjsip": "not_running"})
    assert isinstance(p, engine.Decide) and p.outcome == "down"
    assert "pjsip is not running" in p.because and "not_running" not in p.because


def test_a_decision_by_the_findings_says_them_in_words() -> None:
    facts = {"ari": "reachable", "realtime_db": "none"}
    p = engine.plan(PB, engine.Position("gate"), lambda _a: True, facts=facts)
    assert isinstance(p, engine.Decide) and p.target == "create"
    assert (
        p.because == "Asterisk's REST interface (ARI) answers connbot and the realtime database is not used"
    )


def test_fixes_cause_goes_with_a_question_to_a_person() -> None:
    text = PLAYBOOK.replace("    approval: true\n", "    approval: true\n    fixes_cause: true\n", 1)
    with pytest.raises(PlaybookError) as err:
        loader.parse(text, CATALOGUE)
    assert "step create: fixes_cause goes with action: human" in str(err.value)
