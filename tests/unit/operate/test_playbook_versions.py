"""Changing the playbook while runs wait: each run follows the version it started on to its end,
new runs start on the changed file, and no process needs a restart."""

from __future__ import annotations

import logging

from click.testing import CliRunner, Result
from sqlalchemy import select

from bot.cli.main import main
from bot.settings import Settings
from bot.state.models import PlaybookVersion
from bot.web.app import create_app
from playbook.loader import DEFAULT
from tests.fakes.adapters import scripted_registry
from tests.unit.test_runner import answer, file, load, open_prompt

OLD_CLOSE = "The user experienced a temporary network problem, which is now over; the app reconnected."
NEW_CLOSE = "The app reconnected after a forced reconnection."


def connbot(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def changed(text: str) -> str:
    """The shipped playbook with its first step renamed and a closing reason reworded."""
    assert text.count("check_status") == 2 and OLD_CLOSE in text
    return text.replace("check_status", "check_app_status").replace(OLD_CLOSE, NEW_CLOSE)


def test_waiting_runs_finish_on_their_version_and_new_runs_start_on_the_changed_file(
    make_services, tmp_path, caplog
):
    path = tmp_path / "playbook.yaml"
    path.write_text(DEFAULT.read_text())
    settings = Settings(data_dir=tmp_path / "data", sweep_seconds=0.1, playbook=path)
    # no adapter is configured: every step is a question to a person
    svc = make_services(settings=settings, registry=scripted_registry({}, systems=()))
    _, old_run = file(svc)
    assert open_prompt(svc, old_run).step == "check_status"

    (tmp_path / "old.yaml").write_text(path.read_text())
    path.write_text(changed(path.read_text()))
    _, new_run = file(svc)  # the same process, no restart
    assert open_prompt(svc, new_run).step == "check_app_status"

    # what changed, and which runs under way still go through the old steps
    env = {"CONNBOT_DATA_DIR": str(settings.data_dir)}
    diff = connbot("playbook", "diff", str(tmp_path / "old.yaml"), str(path), env=env)
    assert diff.exit_code == 0, diff.output
    assert "  check_status: removed\n" in diff.output and "  check_app_status: added\n" in diff.output
    assert "  close_transient: changed: close\n" in diff.output and "force_reconnect:" not in diff.output
    runs = diff.output.split("runs under way on ")[1].splitlines()
    assert "may still reach a changed step: 1 (they finish on " in runs[0]
    assert runs[1] == f"  run {old_run}  DESK-1  waiting at check_status: check_status, close_transient"

    # the desk draws each run in its own version
    desk = create_app(services=svc).test_client()
    old_page, new_page = (desk.get(f"/runs/{r}").get_data(as_text=True) for r in (old_run, new_run))
    assert 'data-step="check_status"' in old_page and 'data-step="check_app_status"' not in old_page
    assert 'data-step="check_app_status"' in new_page and 'data-step="check_status"' not in new_page

    # the old run goes on where it waited, in a step the file no longer has, in a process started
    # after the change (it reads the old version from the store)
    later = make_services(settings=settings, registry=scripted_registry({}, systems=()))
    for run_id in (old_run, new_run):
        answer(later, open_prompt(later, run_id).id, "failed")
        answer(later, open_prompt(later, run_id).id, "reconnected")
    old, old_steps, old_comments, _ = load(later, old_run)
    new, new_steps, new_comments, _ = load(later, new_run)
    assert [s for s, _ in old_steps] == ["check_status", "force_reconnect", "close_transient"]
    assert [s for s, _ in new_steps] == ["check_app_status", "force_reconnect", "close_transient"]
    assert OLD_CLOSE in old_comments[-1] and NEW_CLOSE not in old_comments[-1]
    assert NEW_CLOSE in new_comments[-1]
    assert old.end_kind == new.end_kind == "close"
    with later.store.tx() as s:
        kept = {v.version: v for v in s.scalars(select(PlaybookVersion))}
    assert set(kept) == {old.playbook_version, new.playbook_version} and len(kept) == 2
    assert all(v.name == "connection_issues" and v.source == str(path) for v in kept.values())

    # a change that does not load is refused once, naming the problem; new runs stay on the last good one
    caplog.set_level(logging.ERROR, logger="bot.runs.versions")
    path.write_text(path.read_text().replace("close_transient:\n", "close_temporary:\n", 1))
    _, third = file(svc)
    _, fourth = file(svc)
    assert open_prompt(svc, third).step == open_prompt(svc, fourth).step == "check_app_status"
    refusals = [r.getMessage() for r in caplog.records if "does not load" in r.getMessage()]
    assert len(refusals) == 1 and "missing step 'close_transient'" in refusals[0]
    assert new.playbook_version is not None and refusals[0].count(new.playbook_version[:12]) == 1

    # a stored version by its first hex digits: the old run is over, nothing is left on it
    assert old.playbook_version is not None
    diff = connbot("playbook", "diff", old.playbook_version[:8], new.playbook_version[:8], env=env)
    assert diff.exit_code == 0 and "  check_status: removed" in diff.output
    assert "may still reach a changed step: 0" in diff.output
    assert connbot("playbook", "diff", "abcdef0", str(path), env=env).exit_code == 2


TABLE = """
playbook: {playbook}
paths:
  - name: the reconnection fixes it
    outcomes: check_status=failed force_reconnect=reconnected
    steps: check_status force_reconnect close_transient
    end: close
  - name: a wrong port, fixed
    outcomes: [check_status=failed force_reconnect=still_failing, record_error=found check_config=wrong_port,
               fix_config=fixed_connected]
    steps: check_status force_reconnect record_error check_config fix_config close_transient
    end: escalate to level 2
"""


def test_playbook_test_walks_a_teams_table_and_names_the_row_that_goes_astray(tmp_path):
    shipped = connbot("playbook", "test", str(DEFAULT.with_name("connection_issues.paths.yaml")))
    assert shipped.exit_code == 0 and shipped.output.endswith("paths as expected\n")
    table = tmp_path / "paths.yaml"
    table.write_text(TABLE.format(playbook=DEFAULT))
    result = connbot("playbook", "test", str(table))
    assert result.exit_code == 1
    assert result.output == (
        "row 2 (a wrong port, fixed):\n"
        "  took     check_status force_reconnect record_error check_config fix_config close_config_fixed\n"
        "  expected check_status force_reconnect record_error check_config fix_config close_transient\n"
        "  step 6 is close_config_fixed, expected close_transient\n"
        "  ended 'close', expected 'escalate to level 2'\n"
        "connection_issues: 1 of 2 paths as expected\n"
    )
    # an outcome the step does not have, and a row missing its end
    table.write_text(TABLE.format(playbook=DEFAULT).replace("=reconnected", "=rebooted"))
    assert "row 1 (the reconnection fixes it): step force_reconnect has no outcome 'rebooted'" in (
        connbot("playbook", "test", str(table)).output
    )
    table.write_text(TABLE.format(playbook=DEFAULT).replace("    end: close\n", ""))
    bad = connbot("playbook", "test", str(table))
    assert bad.exit_code == 2 and "  - row 1: missing end" in bad.output


def test_playbook_diff_of_two_files_needs_no_database(tmp_path):
    new = tmp_path / "new.yaml"
    new.write_text(changed(DEFAULT.read_text()))
    result = connbot("playbook", "diff", str(DEFAULT), str(new), env={"CONNBOT_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "  check_status: removed\n" in result.output
    assert "runs: not checked (no connbot database at " in result.output
    assert not (tmp_path / "connbot.db").exists()
