"""Set-up errors through the real console script: one line naming what to fix, exit 2, no traceback;
a misspelt setting is warned about with the closest name; the data folder does not depend on the
current folder, and commands that only read never create an empty database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONNBOT = str(Path(sys.executable).with_name("connbot"))


def connbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cwd / "home")}
    return subprocess.run(
        [CONNBOT, *args], capture_output=True, text=True, env={**base, **env}, cwd=cwd, timeout=60
    )


def one_line_exit_2(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) <= 2, proc.stderr  # "bad settings:" and the one problem at most
    return proc.stderr


@pytest.mark.parametrize("command", [["worker"], ["serve", "--port", "18081"]])
def test_a_playbook_that_does_not_exist_is_one_line(tmp_path: Path, command: list[str]) -> None:
    env = {"CONNBOT_PLAYBOOK": "/nonexistent.yaml", "CONNBOT_DATA_DIR": str(tmp_path / "data")}
    err = one_line_exit_2(connbot(*command, env=env, cwd=tmp_path))
    assert "/nonexistent.yaml" in err and "No such file" in err
    assert "Worker failed to boot" not in err


def test_a_json_setting_that_does_not_parse_is_named(tmp_path: Path) -> None:
    env = {
        "CONNBOT_JIRA_URL": "https://example.atlassian.net",
        "CONNBOT_JIRA_ESCALATION": "{bad json",
        "CONNBOT_DATA_DIR": str(tmp_path / "data"),
    }
    err = one_line_exit_2(connbot("worker", env=env, cwd=tmp_path))
    assert "CONNBOT_JIRA_ESCALATION: expected a JSON value" in err


@pytest.mark.parametrize("command", [["db", "upgrade"], ["runs", "list"]])
def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path, command: list[str]) -> None:
    env = {"CONNBOT_DATABASE_URL": "postgresql://bot:s3cret-pw@127.0.0.1:1/connbot"}
    err = one_line_exit_2(connbot(*command, env=env, cwd=tmp_path))
    assert "cannot use the database postgresql://bot:***@127.0.0.1:1/connbot (CONNBOT_DATABASE_URL)" in err
    assert "s3cret-pw" not in err


def test_a_misspelt_setting_is_warned_about_with_the_closest_name(tmp_path: Path) -> None:
    proc = connbot("playbook", "validate", env={"CONNBOT_PROT": "8081"}, cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr.count("CONNBOT_PROT") == 1
    assert "CONNBOT_PROT is not a connbot setting and is ignored (did you mean CONNBOT_PORT?)" in proc.stderr


def test_a_bad_line_in_the_config_file_is_named_once_with_the_file(tmp_path: Path) -> None:
    config = tmp_path / "connbot.env"
    config.write_text("CONNBOT_PORT=8081\nGARBAGE LINE\n")
    err = one_line_exit_2(connbot("runs", "list", env={"CONNBOT_CONFIG": str(config)}, cwd=tmp_path))
    assert err.count("GARBAGE") == 0 and err.count("line 2") == 1
    assert f"CONNBOT_CONFIG: {config} line 2: expected NAME=value" in err


def test_reading_commands_from_another_folder_never_create_an_empty_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    err = one_line_exit_2(connbot("runs", "list", env={}, cwd=elsewhere))
    data = tmp_path / "elsewhere" / "home" / ".local" / "share" / "connbot"
    assert f"no connbot database at {data / 'connbot.db'}" in err
    assert not (elsewhere / "data").exists() and not (data / "connbot.db").exists()


def test_the_default_data_folder_is_the_same_from_any_folder(tmp_path: Path) -> None:
    home = {"HOME": str(tmp_path / "home")}
    upgraded = connbot("db", "upgrade", env=home, cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    other = tmp_path / "other"
    other.mkdir()
    listed = connbot("runs", "list", env=home, cwd=other)
    assert listed.returncode == 0 and "no runs yet" in listed.stdout
    assert (tmp_path / "home" / ".local" / "share" / "connbot" / "connbot.db").is_file()
    assert not (other / "data").exists() and not (tmp_path / "data").exists()
