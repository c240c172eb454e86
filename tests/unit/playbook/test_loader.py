"""The loader rejects each kind of broken playbook with a message naming the step."""

from __future__ import annotations

import textwrap

import pytest

from integrations.base import ActionSpec, Registry, discover
from playbook import loader
from playbook.errors import PlaybookError

CATALOGUE = {
    "app.get_status": ActionSpec("app.get_status", ("registered", "failed"), False, "get_status", ""),
    "pbx.create_account": ActionSpec(
        "pbx.create_account", ("created", "write_denied"), True, "create_account", ""
    ),
}

VALID = """
name: tiny
title: Tiny
start: check
steps:
  check:
    title: Check
    action: app.get_status
    outcomes: {registered: done, failed: ask}
    on_failure: ask
  ask:
    title: Ask
    action: human
    outcomes: {fixed: done, not_fixed: up}
    on_timeout: up
  up:
    title: Escalate
    escalate: 2
  done:
    title: Close
    close: Fixed.
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        loader.parse(textwrap.dedent(text), CATALOGUE)
    return info.value.problems


def edit(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


def test_the_valid_example_loads() -> None:
    pb = loader.parse(VALID, CATALOGUE)
    assert set(pb.steps) == {"check", "ask", "up", "done"}


def test_the_shipped_playbook_is_valid_against_the_installed_adapters() -> None:
    pb = loader.load(None, Registry(discover()).catalogue)
    assert pb.start == "check_status"
    assert {s.level for s in pb.steps.values()} == {1, 2}


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            edit("action: app.get_status", "action: app.get_stats"),
            "step check: unknown action 'app.get_stats'",
        ),
        (
            edit("outcomes: {registered: done, failed: ask}", "outcomes: {registered: done}"),
            "step check: outcomes without an edge: failed",
        ),
        (
            edit(
                "outcomes: {registered: done, failed: ask}",
                "outcomes: {registered: done, failed: ask, maybe: ask}",
            ),
            "step check: app.get_status has no outcome maybe",
        ),
        (
            edit("failed: ask}", "failed: nowhere}"),
            "step check: outcome 'failed' goes to missing step 'nowhere'",
        ),
        (
            VALID + "  orphan:\n    title: Orphan\n    close: Never.\n",
            "step orphan: unreachable from the start (check)",
        ),
        (edit("    on_timeout: up\n", ""), "step ask: waits for a person but has no on_timeout edge"),
        (edit("    escalate: 2\n", ""), "step up: an end must be 'close: <reason>' or 'escalate: <level>'"),
        (
            edit("    escalate: 2\n", "    escalate: 2\n    close: Both.\n"),
            "step up: an end either closes or escalates",
        ),
        (edit("    on_failure: ask\n", ""), "step check: has no on_failure edge"),
        (
            edit("    on_failure: ask\n", "    on_failure: ask\n    ask_customer: fixed\n"),
            "step check: ask_customer: 'fixed' is not one of the step's outcomes",
        ),
        (edit("start: check", "start: begin"), "start: no step named 'begin'"),
        (
            edit("{fixed: done, not_fixed: up}", "{fixed: done, not_fixed: check}"),
            "step check: in a cycle without a bound (check -> ask)",
        ),
        (
            edit("    escalate: 2\n", "    escalate: 2\n    level: 2\n"),
            "step up: escalates to level 2, which is not above",
        ),
        (
            edit("    title: Ask\n", "    title: Ask\n    timeout: soon\n"),
            "step ask: timeout: expected a duration",
        ),
        (
            edit("    title: Ask\n", "    title: Ask\n    colour: red\n"),
            "step ask: colour: Extra inputs are not permitted",
        ),
        (
            edit("    title: Ask\n", "    title: Ask\n    instructions: Fix {acount_missing}.\n"),
            "step ask: instructions: {acount_missing} is not a finding",
        ),
        (
            edit("    escalate: 2\n", "    escalate: 2\n    instructions: Look at {pbx}.\n"),
            "step up: instructions: an end's are written as they are, so they name no findings",
        ),
        ("steps: [", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_broken_playbooks_are_rejected_naming_the_step(broken: str, expected: str) -> None:
    found = problems(broken)
    assert any(expected in p for p in found), found


def test_account_changing_actions_need_approval() -> None:
    text = edit(
        "action: human\n    outcomes: {fixed: done, not_fixed: up}",
        "action: pbx.create_account\n    outcomes: {created: done, write_denied: up}\n    on_failure: up",
    )
    assert "step ask: pbx.create_account changes an account, so the step needs approval: true" in problems(
        text
    )


def test_a_bounded_cycle_is_accepted() -> None:
    text = edit("{fixed: done, not_fixed: up}", "{fixed: done, not_fixed: check}").replace(
        "    on_failure: ask\n", "    on_failure: ask\n    max_visits: 2\n    on_exhausted: up\n", 1
    )
    pb = loader.parse(text, CATALOGUE)
    assert pb.steps["check"].max_visits == 2


def test_every_problem_is_reported_at_once() -> None:
    text = edit("action: app.get_status", "action: app.nope").replace("    on_timeout: up\n", "")
    found = problems(text)
    assert any("unknown action" in p for p in found) and any("no on_timeout" in p for p in found)


def test_a_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(PlaybookError, match="cannot read the file"):
        loader.load(tmp_path / "none.yaml", CATALOGUE)
