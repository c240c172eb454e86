"""configure(): not configured is None, bad settings a SettingsError naming the variable, and the
installed adapters' outcomes are exactly those the playbook branches on."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.app.adapter import AppAdapter
from integrations.base import Registry, discover
from integrations.logs.adapter import LogsAdapter
from integrations.net.adapter import NetAdapter
from integrations.pbx.adapter import PbxAdapter
from integrations.settings import Sections, SettingsError
from playbook.loader import load

ADAPTERS = (AppAdapter, PbxAdapter, NetAdapter)


@pytest.mark.parametrize("cls", ADAPTERS)
def test_without_settings_an_adapter_is_not_configured(clean_env: pytest.MonkeyPatch, cls: type) -> None:
    assert cls.configure(Sections()) is None


def test_adapters_are_configured_from_the_environment_they_are_handed(clean_env: pytest.MonkeyPatch) -> None:
    environ = {"CONNBOT_SIP_HOST": "pbx.example.com", "CONNBOT_NET_TIMEOUT": "0.7"}
    net = NetAdapter.configure(Sections(environ))
    assert net is not None and net.sip.sip_host == "pbx.example.com" and net.settings.net_timeout == 0.7
    assert NetAdapter.configure(Sections()) is None  # the process's environment was not touched


def test_logs_is_always_configured(clean_env: pytest.MonkeyPatch) -> None:
    adapter = LogsAdapter.configure(Sections())
    assert adapter is not None and adapter.app is None


def test_a_full_environment_configures_every_adapter(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in {
        "ARI_URL": "http://pbx:8088/",
        "ARI_USERNAME": "connbot",
        "ARI_PASSWORD": "pw",
        "APP_API_URL": "https://apps.example.com/v1",
        "APP_API_TOKEN": "tok",
        "SIP_HOST": "PBX.example.com",
        "PBX_DB_URL": "postgresql://a@db/asterisk",
    }.items():
        clean_env.setenv(f"CONNBOT_{name}", value)
    pbx = PbxAdapter.configure(Sections())
    assert (
        pbx is not None
        and pbx.app is not None
        and pbx.db is not None
        and pbx.ari.base == "http://pbx:8088/ari"
    )
    app = AppAdapter.configure(Sections())
    assert (
        app is not None
        and app.client.base == "https://apps.example.com/v1"
        and app.expected.sip_host == "pbx.example.com"
    )
    net = NetAdapter.configure(Sections())
    assert net is not None and net.ari == ("pbx", 8088)
    registry = Registry(discover(), [a for a in (pbx, app, net, LogsAdapter.configure(Sections())) if a])
    assert registry.available("pbx.reset_password") and registry.available("logs.classify")


@pytest.mark.parametrize(
    "env, named",
    [
        ({"ARI_URL": "pbx:8088"}, "CONNBOT_ARI_URL"),
        ({"ARI_URL": "http://pbx:8088"}, "CONNBOT_ARI_USERNAME"),
        (
            {
                "ARI_URL": "http://pbx:8088",
                "ARI_USERNAME": "u",
                "ARI_PASSWORD": "p",
                "PBX_DB_URL": "mysql://x",
            },
            "CONNBOT_PBX_DB_URL",
        ),
        (
            {
                "ARI_URL": "http://pbx:8088",
                "ARI_USERNAME": "u",
                "ARI_PASSWORD": "p",
                "PBX_DB_SLOW_MS": "fast",
            },
            "CONNBOT_PBX_DB_SLOW_MS",
        ),
    ],
)
def test_bad_pbx_settings_name_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(f"CONNBOT_{name}", value)
    with pytest.raises(SettingsError, match=named):
        PbxAdapter.configure(Sections())


def test_a_url_with_credentials_in_it_is_refused_without_showing_them(clean_env: pytest.MonkeyPatch) -> None:
    """The URL is quoted in error messages (connection refused by ...), which reach tickets and logs."""
    for name, value in {
        "ARI_URL": "http://connbot:S3cretPW@pbx:8088",
        "ARI_USERNAME": "u",
        "ARI_PASSWORD": "p",
    }.items():
        clean_env.setenv(f"CONNBOT_{name}", value)
    with pytest.raises(SettingsError) as caught:
        PbxAdapter.configure(Sections())
    assert str(caught.value) == (
        "CONNBOT_ARI_URL: expected an http(s)://host[:port] URL without a user or password in it (the URL "
        "is quoted in messages; give the credentials in their own settings) (got 'http://***@pbx:8088')"
    )


@pytest.mark.parametrize(
    "env, named",
    [
        ({"APP_API_URL": "http://apps"}, "CONNBOT_APP_API_TOKEN"),
        (
            {"APP_API_URL": "http://apps", "APP_API_TOKEN": "t", "APP_RECONNECT_DEADLINE": "-1"},
            "CONNBOT_APP_RECONNECT_DEADLINE",
        ),
        (
            {"APP_API_URL": "http://apps", "APP_API_TOKEN": "t", "SIP_TRANSPORT": "sctp"},
            "CONNBOT_SIP_TRANSPORT",
        ),
    ],
)
def test_bad_app_settings_name_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(f"CONNBOT_{name}", value)
    with pytest.raises(SettingsError, match=named):
        AppAdapter.configure(Sections())


def test_a_missing_extra_catalogue_is_a_settings_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("CONNBOT_LOGS_CATALOGUE", str(tmp_path / "nope.yaml"))
    with pytest.raises(SettingsError, match="CONNBOT_LOGS_CATALOGUE"):
        LogsAdapter.configure(Sections())


def test_bad_net_settings_name_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONNBOT_SIP_HOST", "pbx")
    clean_env.setenv("CONNBOT_NET_PROBES", "0")
    with pytest.raises(SettingsError, match="CONNBOT_NET_PROBES"):
        NetAdapter.configure(Sections())


def test_the_reconnect_deadline_defaults_past_the_udp_register_timeout(clean_env: pytest.MonkeyPatch) -> None:
    from integrations.app.settings import AppSettings

    assert AppSettings().app_reconnect_deadline >= 35


def test_the_playbook_uses_exactly_the_adapters_outcomes() -> None:
    playbook = load(None, Registry(discover()).catalogue)
    catalogue = Registry(discover()).catalogue
    for sid, step in playbook.steps.items():
        if step.action and step.action != "human":
            assert set(step.outcomes) == set(catalogue[step.action].outcomes), sid
