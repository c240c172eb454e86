"""Changing the playbook while runs wait: each run follows the version it started on to its end,
new runs start on the changed file, and no process needs a restart."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.settings import Settings
from bot.state.models import PlaybookVersion
from bot.web.app import create_app
from playbook.loader import DEFAULT
from tests.fakes.adapters import scripted_registry
from tests.unit.test_runner import answer, file, load, open_prompt

OLD_CLOSE = "The user experienced a temporary network problem, which is now over; the app reconnected."
NEW_CLOSE = "The app reconnected after a forced reconnection."


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

    path.write_text(changed(path.read_text()))
    _, new_run = file(svc)  # the same process, no restart
    assert open_prompt(svc, new_run).step == "check_app_status"

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
