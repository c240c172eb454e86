"""One adapter set per PBX instance, each from its own settings objects: no shared clients, no
shared credentials.

Settings that are not about reaching a system (timeouts, probe counts, the PBX context new
accounts get) come from the usual `CONNBOT_*` sections; everything that says where a system is and
how to log in comes from the instance alone, so nothing of the single-PBX settings leaks in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from bot.fleet.directory import Directory, FleetSettings, Instance, load_directory, secret
from integrations.app.adapter import AppAdapter
from integrations.app.settings import AppSettings
from integrations.base import Adapter, Registry
from integrations.jira.settings import EscalationTarget
from integrations.logs.adapter import LogsAdapter
from integrations.logs.settings import LogsSettings
from integrations.net.adapter import NetAdapter
from integrations.net.settings import NetSettings
from integrations.pbx.adapter import PbxAdapter
from integrations.pbx.settings import PbxSettings, SipSettings
from integrations.settings import Sections, SettingsError, load


def instance_settings(inst: Instance) -> tuple[PbxSettings, AppSettings | None, SipSettings]:
    """The PBX, app backend and SIP settings of one instance (secrets read from their variables)."""
    try:
        pbx = load(
            PbxSettings,
            ari_url=inst.ari.url,
            ari_username=inst.ari.username,
            ari_verify=inst.ari.verify,
            ari_password=SecretStr(secret(inst.ari.password_env)),
            pbx_db_url=SecretStr(secret(inst.db_url_env)) if inst.db_url_env else None,
        )
        app = (
            load(AppSettings, app_api_url=inst.app.url, app_api_token=SecretStr(secret(inst.app.token_env)))
            if inst.app
            else None
        )
        sip = load(
            SipSettings,
            sip_host=inst.sip.host,
            sip_port=inst.sip.port,
            sip_transport=inst.sip.transport,
            sip_domain=inst.sip.domain,
        )
    except SettingsError as exc:
        raise SettingsError(
            "\n".join(f"instance {inst.name!r}: {line}" for line in str(exc).splitlines())
        ) from None
    return pbx, app, sip


def instance_registry(inst: Instance, classes: Iterable[type[Adapter]], sections: Sections) -> Registry:
    """The adapters that check tickets of this instance's customers."""
    pbx, app, sip = instance_settings(inst)
    adapters: list[Adapter] = [
        PbxAdapter.from_settings(pbx, app),
        NetAdapter.from_settings(sip, sections(NetSettings), pbx),
        LogsAdapter.from_settings(sections(LogsSettings), app),
    ]
    if app:
        adapters.append(AppAdapter.from_settings(app, sip))
    return Registry(classes, adapters)


@dataclass
class Fleet:
    """The directory and each instance's registry. `nowhere` is for a run routed to no PBX:
    it has no adapters, so a person does every step and no instance's credentials are used."""

    directory: Directory
    registries: Mapping[str, Registry]
    nowhere: Registry

    @classmethod
    def build(cls, directory: Directory, classes: Iterable[type[Adapter]], sections: Sections) -> Fleet:
        classes = list(classes)
        registries = {i.name: instance_registry(i, classes, sections) for i in directory.instances}
        return cls(directory, registries, Registry(classes))

    def registry(self, name: str | None) -> Registry:
        return self.registries.get(name or "", self.nowhere)

    def slack_channel(self, name: str | None) -> str | None:
        inst = self.directory.instance(name)
        return inst.slack_channel or None if inst else None

    def escalations(self) -> dict[str, dict[int, EscalationTarget]]:
        """Each instance's Jira escalation targets, where it overrides them."""
        return {i.name: i.escalation for i in self.directory.instances if i.escalation}


def configured_directory() -> Directory | None:
    """The directory named by `CONNBOT_PBX_DIRECTORY`, validated; None when it is not set."""
    path = load(FleetSettings).pbx_directory
    return load_directory(path) if path else None
