"""Set-up errors through the real console script: one line naming what to fix, exit 2, no traceback;
a misspelt setting is warned about with the closest name; the data folder does not depend on the
current folder, and commands that only read never create an empty database."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONNBOT = str(Path(sys.executable).with_name("connbot"))
ROOT = Path(__file__).resolve().parents[2]


def base_env(cwd: Path) -> dict[str, str]:
    """A bare environment; this checkout's code first, whichever one the console script was installed from."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(cwd / "home"), "PYTHONPATH": str(ROOT)}


def connbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONNBOT, *args], capture_output=True, text=True, env={**base_env(cwd), **env}, cwd=cwd, timeout=60
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
    assert "CONNBOT_PLAYBOOK: Path does not point to a file (got '/nonexistent.yaml')" in err
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


def documented_settings() -> set[str]:
    """The names the README's settings tables (`| NAME |`) and lists (`- NAME: ...`) document; a range
    `CONNBOT_X_L1` … `_L3` is each of its names."""
    lines = (ROOT / "README.md").read_text().splitlines()
    heads = [line.split("|")[1] for line in lines if line.startswith("| `CONNBOT_")]
    heads += [line.split(":")[0] for line in lines if line.startswith("- `CONNBOT_")]
    names = {name for head in heads for name in re.findall(r"`(CONNBOT_[A-Z0-9_]+)`", head)}
    for head in heads:
        for first, last in re.findall(r"`(CONNBOT_[A-Z0-9_]+_L)1` … `_L(\d)`", head):
            names.update(f"{first}{n}" for n in range(1, int(last) + 1))
    return names


def test_every_setting_the_readme_documents_is_known(tmp_path: Path) -> None:
    names = documented_settings()
    assert {"CONNBOT_PORT", "CONNBOT_NET_TIMEOUT", "CONNBOT_LOGS_CATALOGUE", "CONNBOT_JIRA_URL"} <= names
    assert {"CONNBOT_DESK_USERS", "CONNBOT_SLACK_BOT_TOKEN", "CONNBOT_SLACK_GROUP_L3"} <= names
    config = tmp_path / "connbot.env"
    config.write_text("")
    directory = tmp_path / "pbx-directory.yaml"
    directory.write_text(
        "instances:\n- {name: a, ari: {url: 'http://127.0.0.1:1', username: u, password_env: A_PW},"
        " sip: {host: 127.0.0.1}}\n"
    )
    env = {name: "" for name in names} | {
        "CONNBOT_CONFIG": str(config),
        "CONNBOT_PBX_DIRECTORY": str(directory),
        "A_PW": "pw",
    }
    proc = connbot("playbook", "validate", env=env, cwd=tmp_path)  # the empty values are bad settings
    assert "is not a connbot setting" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("CONNBOT_PLAYBOOK", "/nonexistent.yaml", "Path does not point to a file"),
        ("CONNBOT_ARI_URL", "notaurl", "expected an http(s)://host[:port] URL"),
        ("CONNBOT_JIRA_ESCALATION", "{bad", "expected a JSON value"),
        ("CONNBOT_ADMIN_TOKEN", "short", "has 5 characters; it needs at least 16"),
    ],
)
def test_a_bad_setting_stops_a_command_that_does_not_use_it(
    tmp_path: Path, name: str, value: str, problem: str
) -> None:
    assert connbot("db", "upgrade", env={}, cwd=tmp_path).returncode == 0
    err = one_line_exit_2(connbot("runs", "list", env={name: value}, cwd=tmp_path))
    assert f"{name}: {problem}" in err


def test_a_bad_diagnosis_rules_file_is_named_by_its_variable(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "causes:\n  x:\n    title: X\n    says: s\n    fix: f\n"
        "    support: [{when: {arii: refused}, weight: 1, note: n}]\n"
    )
    err = one_line_exit_2(
        connbot("playbook", "validate", env={"CONNBOT_DIAGNOSIS_RULES": str(rules)}, cwd=tmp_path)
    )
    assert (
        f"CONNBOT_DIAGNOSIS_RULES ({rules}) is not usable: cause x: support.0.when: unknown finding 'arii'"
        in err
    )


def test_a_desk_for_other_hosts_with_unsigned_jira_webhooks_stops_serve_before_its_worker(
    tmp_path: Path,
) -> None:
    env = {
        "CONNBOT_HOST": "0.0.0.0",
        "CONNBOT_PORT": str(free_port()),
        "CONNBOT_JIRA_INSECURE_DEV": "true",
        "CONNBOT_ADMIN_TOKEN": "a" * 20,
    }
    err = one_line_exit_2(connbot("serve", env=env, cwd=tmp_path))
    assert (
        "CONNBOT_JIRA_INSECURE_DEV=true accepts unsigned webhooks" in err and "CONNBOT_HOST is 0.0.0.0" in err
    )
    assert "Booting worker" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_line_of_serve_is_json_with_the_json_log_format(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    env = {**base_env(tmp_path), "CONNBOT_LOG_FORMAT": "json", "CONNBOT_PORT": str(free_port())}
    with log.open("wb") as out:
        proc = subprocess.Popen([CONNBOT, "serve"], env=env, cwd=tmp_path, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while "connbot serving on" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [r["message"] for r in records if r["logger"] == "gunicorn.error"]
    assert any(m.startswith("Starting gunicorn") for m in messages)
    assert any(m.startswith("Booting worker") for m in messages)


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
