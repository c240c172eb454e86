"""The connbot command: settings errors, playbook commands, runs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.runs import intake
from integrations.base import ActionResult
from tests.fakes.adapters import scripted_registry


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_a_bad_setting_stops_with_one_line_naming_it_and_exit_2(tmp_path):
    connbot = Path(sys.executable).with_name("connbot")
    proc = subprocess.run(
        [str(connbot), "runs", "list"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CONNBOT_PORT": "eighty", "CONNBOT_QUEUE_URL": "amqp://x"},
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        "CONNBOT_PORT: Input should be a valid integer, unable to parse string as an integer (got 'eighty')"
        in proc.stderr
    )
    assert "CONNBOT_QUEUE_URL: expected a redis:// or sqlite:/// URL (got 'amqp://x')" in proc.stderr


def test_a_missing_config_file_is_named(tmp_path):
    result = run("runs", "list", env={"CONNBOT_CONFIG": str(tmp_path / "nope.env")})
    assert result.exit_code == 2 and f"CONNBOT_CONFIG: no such file: {tmp_path / 'nope.env'}" in result.output


def every_command(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every group and command under `connbot`, e.g. ("db",) and ("db", "upgrade")."""
    for name, command in group.commands.items():
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


BAD_PORT = {"CONNBOT_PORT": "abc"}


@pytest.mark.parametrize("path", [(), *every_command()], ids=" ".join)
def test_help_works_whatever_the_settings(path):
    result = run(*path, "--help", env=BAD_PORT)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('main', *path))} [OPTIONS]")
    assert "bad settings" not in result.output


def test_version_works_whatever_the_settings():
    result = run("--version", env=BAD_PORT)
    assert result.exit_code == 0 and "connbot, version" in result.output


@pytest.mark.parametrize(
    "path", [p for p in every_command() if not isinstance(command_at(p), click.Group)], ids=" ".join
)
def test_every_command_refuses_a_bad_setting_before_it_does_anything(path):
    args = [*path]
    for param in command_at(path).params:
        if param.required:
            value = __file__ if isinstance(param.type, click.Path) else "1"
            args += [param.opts[0], value] if isinstance(param, click.Option) else [value]
    result = run(*args, env={**BAD_PORT, "CONNBOT_ARI_URL": "notaurl"})  # two sections: all are checked
    assert result.exit_code == 2
    assert result.output == (
        "connbot: bad settings:\n"
        "CONNBOT_ARI_URL: expected an http(s)://host[:port] URL (got 'notaurl')\n"
        "CONNBOT_PORT: Input should be a valid integer, unable to parse string as an integer (got 'abc')\n"
    )


def test_settings_come_from_the_config_file_and_the_environment_wins(tmp_path, monkeypatch):
    from bot.settings import load_settings

    config = tmp_path / "connbot.env"
    config.write_text("CONNBOT_PORT=9000\nCONNBOT_HOST=0.0.0.0\n")
    monkeypatch.setenv("CONNBOT_CONFIG", str(config))
    monkeypatch.setenv("CONNBOT_PORT", "9100")
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)


def test_playbook_validate_and_render_show_both_levels():
    result = run("playbook", "validate")
    assert result.exit_code == 0 and "connection_issues: valid (37 steps, 7 ends)" in result.output
    mermaid = run("playbook", "render").output
    assert mermaid.startswith("flowchart TD") and '"Level 1"' in mermaid and '"Level 2"' in mermaid
    assert (
        'check_status -->|"registered, registering, unregistered, failed, unknown, device_offline, '
        'on_failure"| force_reconnect' in mermaid
    )
    dot = run("playbook", "render", "--format", "dot").output
    assert dot.startswith('digraph "connection_issues"') and "escalate_l2 -> check_network" in dot


def test_playbook_validate_lists_every_problem_of_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: b\ntitle: B\nstart: a\nsteps:\n  a:\n    title: A\n    action: app.nope\n    on_failure: z\n"
    )
    result = run("playbook", "validate", str(broken))
    assert result.exit_code == 1
    assert "step a: unknown action 'app.nope'" in result.output
    assert "step a: on_failure goes to missing step 'z'" in result.output


def test_playbook_simulate_prints_the_path_and_the_end():
    result = run(
        "playbook",
        "simulate",
        *("--outcome", "check_status=failed"),
        *("--outcome", "force_reconnect=timeout"),
        *("--outcome", "record_error=none"),
        *("--outcome", "check_config=ok"),
        *("--outcome", "check_account=missing"),
        *("--fact", "check_account.ari=reachable"),
        *("--fact", "check_account.account=missing"),
        *("--outcome", "check_backend=db_ok"),
        *("--fact", "check_backend.realtime_db=ok"),
        *("--outcome", "create_account=REJECTED"),
        *("--outcome", "fix_account_by_hand=resolved"),
        *("--outcome", "recheck_account=registered"),
    )
    assert result.exit_code == 0, result.output
    assert " 7. [L1] account_gate: route 4" in result.output
    assert " 8. [L1] create_account: REJECTED" in result.output
    assert result.output.strip().endswith(
        "leading cause: The user's account is missing on the PBX (50%): The PBX has no account for the user: "
        "the PBX has no endpoint for the user. Create the account (auth, AOR, endpoint), with approval."
    )
    missing = run("playbook", "simulate", "--outcome", "check_status=failed")
    assert missing.exit_code == 1 and "no outcome given for step force_reconnect" in missing.output
    for fact, said in (
        ("arii=refused", "--fact 'arii=refused': unknown finding 'arii' (known: account, account_missing, "),
        ("check_network.ari=down", "--fact 'check_network.ari=down': finding ari: Input should be "),
    ):
        refused = run("playbook", "simulate", "--outcome", "check_status=failed", "--fact", fact)
        assert refused.exit_code == 2 and said in refused.output, refused.output


def test_runs_list_and_show(make_services, settings, monkeypatch):
    status = ActionResult(
        outcome="failed",
        summary="The app on device d1 failed to register; last error: 408 Request Timeout.",
        facts={"device_id": "d1", "registration": "failed", "registration_error": "timeout"},
    )
    reconnected = ActionResult(
        outcome="reconnected",
        summary="The app on device d1 reconnected and registered in 2 s.",
        facts={"reconnect": "registered", "registration": "registered", "user_known_app": True},
    )
    svc = make_services(
        registry=scripted_registry({"app.get_status": [status], "app.reconnect": [reconnected]})
    )
    ticket, run_id = intake.file_desk_ticket(
        svc.context, "Alice can't connect", "", "alice@example.com", "1001"
    )
    svc.queue.run_pending()
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    listing = run("runs", "list").output
    assert ticket.key in listing and "ended" in listing
    shown = run("runs", "show", str(run_id)).output
    assert "classification: Filed on the desk as a connection issue." in shown
    assert "state: closed: The user experienced a temporary network problem" in shown
    # each step's outcome in the playbook's words, its code beside them (the JSON has both)
    assert "2. [L1] Force a manual reconnection of the app  -> The app reconnected [reconnected]  (" in shown
    assert "       The app on device d1 reconnected and registered in 2 s." in shown
    # the findings as plain lines (the device id passed between steps is no finding), then the diagnosis
    lines = shown.splitlines()
    found = lines[lines.index("findings:") + 1 : lines.index("findings:") + 5]
    assert found == [
        "  registration: registered",
        "  registration_error: timeout",
        "  reconnect: registered",
        "  user_known_app: yes",
    ]
    assert "device_id" not in shown
    assert "diagnosis: A temporary problem (100%): The failure did not last" in lines
    assert "  why: the app reconnected and registered; the app is registered" in lines
    assert "  what to do: Nothing to do; close the ticket." in lines
    data = json.loads(run("runs", "show", str(run_id), "--json").output)
    assert (data["steps"][1]["outcome"], data["steps"][1]["said"]) == ("reconnected", "The app reconnected")
    assert data["findings"]["reconnect"] == "registered" and "device_id" not in data["findings"]
    assert data["diagnosis"][0]["cause"] == "transient" and data["diagnosis"][0]["confidence"] == 1.0
    assert run("runs", "show", "99").exit_code == 1


def test_runs_show_says_what_speaks_against_the_leading_cause_and_names_the_others(
    make_services, settings, monkeypatch
):
    status = ActionResult(
        outcome="failed",
        summary="The app on device d2 failed to register; last error: 401 Unauthorized.",
        facts={"credentials": "password_mismatch", "log_class": "auth_failure", "account": "missing"},
    )
    svc = make_services(
        registry=scripted_registry({"app.get_status": [status], "app.reconnect": ["reconnected"]})
    )
    _, run_id = intake.file_desk_ticket(svc.context, "Bob can't connect", "", "bob@example.com", "1002")
    svc.queue.run_pending()
    monkeypatch.setenv("CONNBOT_DATA_DIR", str(settings.data_dir))
    lines = run("runs", "show", str(run_id)).output.splitlines()
    lead = lines.index(
        "diagnosis: The app's password (or user name) differs from the PBX's (80%): "
        "The app's credentials do not match the PBX's"
    )
    assert lines[lead + 1 :] == [
        "  why: the HA1 digests differ; the log shows authentication failures",
        "  against it: there is no account to authenticate against",
        "  what to do: Set a new password on the PBX and in the app, with approval.",
        "  also possible: The user's account is missing on the PBX (50%)",
    ]
