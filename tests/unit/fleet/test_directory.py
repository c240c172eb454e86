"""The PBX directory is validated whole at start; each problem names the entry and the field."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.services import Services
from integrations.settings import SettingsError
from tests.fakes.fleet import two_customers, use_directory


def rejected(make_services, monkeypatch, tmp_path, data, secrets=None) -> str:
    use_directory(monkeypatch, tmp_path, data, secrets)
    with pytest.raises(SettingsError) as exc:
        make_services()
    return str(exc.value)


def test_a_valid_directory_gives_each_instance_its_own_adapters(make_services, monkeypatch, tmp_path):
    use_directory(monkeypatch, tmp_path, two_customers())
    monkeypatch.setenv("CONNBOT_ARI_URL", "http://single.test:8088")  # the single-PBX settings are not used
    monkeypatch.setenv("CONNBOT_ARI_USERNAME", "single")
    monkeypatch.setenv("CONNBOT_ARI_PASSWORD", "single-pw")
    svc = make_services()
    acme, globex = svc.registry_for("acme"), svc.registry_for("globex")
    assert set(acme.adapters) == set(globex.adapters) == {"pbx", "app", "net", "logs"}
    assert acme.adapters["pbx"].ari is not globex.adapters["pbx"].ari
    assert acme.adapters["pbx"].settings.ari_url == "http://pbx.acme.test:8088"
    assert globex.adapters["pbx"].settings.ari_password.get_secret_value() == "globex-ari-pw"
    assert acme.adapters["app"].client is not acme.adapters["logs"].app is not None
    # A run with no PBX has no adapters: a person does each step, no one's credentials are used.
    assert svc.registry_for(None).adapters == {} and svc.registry.adapters == {}


def test_an_instance_without_an_app_backend_gets_none_of_the_single_pbx_one(
    make_services, monkeypatch, tmp_path
):
    data = two_customers()
    del data["instances"][1]["app"]
    use_directory(monkeypatch, tmp_path, data)
    monkeypatch.setenv("CONNBOT_APP_API_URL", "http://single-app.test")
    monkeypatch.setenv("CONNBOT_APP_API_TOKEN", "single-app-token")
    svc = make_services()
    globex = svc.registry_for("globex")
    assert set(globex.adapters) == {"pbx", "net", "logs"}
    assert globex.adapters["pbx"].app is None and globex.adapters["logs"].app is None
    assert "app" in svc.registry_for("acme").adapters


def test_a_missing_secret_variable_is_named_with_the_entry_and_field(make_services, monkeypatch, tmp_path):
    monkeypatch.delenv("GLOBEX_ARI_PASSWORD", raising=False)
    message = rejected(
        make_services, monkeypatch, tmp_path, two_customers(), secrets={"GLOBEX_ARI_PASSWORD": ""}
    )
    assert message.endswith(
        "instance 'globex' (entry 2): ari.password_env: environment variable GLOBEX_ARI_PASSWORD is not set"
    )
    assert "globex-ari-pw" not in message


def test_a_duplicate_name_and_a_shared_customer_key_are_rejected(make_services, monkeypatch, tmp_path):
    data = two_customers()
    data["instances"][1]["name"] = "acme"
    data["instances"][1]["customers"] = ["acme.example"]
    message = rejected(make_services, monkeypatch, tmp_path, data)
    assert "instance 'acme' (entry 2): name: duplicate of entry 1" in message
    assert "instance 'acme' (entry 2): customers: 'acme.example' is already a customer of entry 1" in message


def test_bad_urls_unknown_keys_and_bad_rules_are_each_reported(make_services, monkeypatch, tmp_path):
    data = two_customers()
    data["instances"][0]["ari"]["url"] = "pbx.acme.test:8088"
    data["instances"][1]["app"]["url"] = "ftp://app.globex.test"
    data["instances"][1]["sip"]["protocol"] = "udp"
    data["routing"].append({"summary": r"\[([A-Z]+)\]"})
    lines = rejected(make_services, monkeypatch, tmp_path, data).splitlines()
    path = tmp_path / "pbx-directory.yaml"
    assert lines == [
        f"CONNBOT_PBX_DIRECTORY ({path}): routing rule 4: the regular expression '\\\\[([A-Z]+)\\\\]' has no "
        "(?P<customer>...) group",
        f"CONNBOT_PBX_DIRECTORY ({path}): instance 'acme' (entry 1): ari.url: expected an "
        "http(s)://host[:port] URL",
        f"CONNBOT_PBX_DIRECTORY ({path}): instance 'globex' (entry 2): sip.protocol: unknown key",
        f"CONNBOT_PBX_DIRECTORY ({path}): instance 'globex' (entry 2): app.url: expected an "
        "http(s)://host[:port] URL",
    ]


def test_every_kind_of_problem_is_reported_at_once(monkeypatch, tmp_path):
    data = two_customers()
    data["instances"][0]["sip"]["protocol"] = "udp"  # the file is not well formed as a whole ...
    data["instances"].append({**data["instances"][1], "customers": []})  # ... and globex twice
    path = use_directory(monkeypatch, tmp_path, data, secrets={"GLOBEX_ARI_PASSWORD": ""})
    result = CliRunner().invoke(main, ["pbx", "list"])
    assert result.exit_code == 2
    unset = "ari.password_env: environment variable GLOBEX_ARI_PASSWORD is not set"
    assert result.output.splitlines()[1:] == [
        f"CONNBOT_PBX_DIRECTORY ({path}): {problem}"
        for problem in (
            "instance 'acme' (entry 1): sip.protocol: unknown key",
            f"instance 'globex' (entry 2): {unset}",
            "instance 'globex' (entry 3): name: duplicate of entry 2",
            f"instance 'globex' (entry 3): {unset}",
        )
    ]


def test_the_cli_stops_with_exit_2_and_one_line_per_problem(monkeypatch, tmp_path):
    data = two_customers()
    data["instances"][0]["ari"]["url"] = "not a url"
    use_directory(monkeypatch, tmp_path, data, secrets={"ACME_APP_TOKEN": ""})
    for command in (["serve"], ["pbx", "list"], ["pbx", "check", "--all"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, command
        assert "instance 'acme' (entry 1): ari.url: expected an http(s)://host[:port] URL" in result.output
        assert "Traceback" not in result.output


def test_without_a_directory_the_single_pbx_settings_are_used(settings, monkeypatch):
    monkeypatch.setenv("CONNBOT_ARI_URL", "http://single.test:8088")
    monkeypatch.setenv("CONNBOT_ARI_USERNAME", "connbot")
    monkeypatch.setenv("CONNBOT_ARI_PASSWORD", "single-pw")
    svc = Services.build(settings)
    try:
        assert svc.fleet is None and svc.registry_for(None) is svc.registry
        assert svc.registry.adapters["pbx"].settings.ari_url == "http://single.test:8088"
    finally:
        svc.close()
    result = CliRunner().invoke(main, ["pbx", "list"])
    assert result.exit_code == 2 and "no PBX directory is configured (CONNBOT_PBX_DIRECTORY)" in result.output
