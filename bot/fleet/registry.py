"""One adapter set per PBX instance, each from its own settings objects: no shared clients, no
shared credentials.

Each instance's entry gives its own PBX, app backend and SIP sections; every installed adapter
class (entry points `connbot.adapters`) configures itself from those, as it does from the
single-PBX settings, so this module names no adapter. Settings that are not about reaching a
system (timeouts, probe counts, the PBX context new accounts get) come from the usual `CONNBOT_*`
sections; everything that says where a system is and how to log in comes from the instance alone,
so nothing of the single-PBX settings leaks in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from bot.fleet.directory import Directory, FleetSettings, Instance, load_directory, secret
from integrations.app.settings import AppSettings
from integrations.base import Adapter, Registry
from integrations.jira.settings import EscalationTarget
from integrations.pbx.settings import PbxSettings, SipSettings
from integrations.settings import Sections, SettingsError, load


def instance_sections(inst: Instance, sections: Sections) -> Sections:
    """`sections` with the PBX, app backend and SIP sections of one instance (secrets read from
    their variables); an instance without an app backend has an unconfigured one."""
    environ = sections.environ
    try:
        pbx = load(
            PbxSettings,
            environ,
            ari_url=inst.ari.url,
            ari_username=inst.ari.username,
            ari_verify=inst.ari.verify,
            ari_password=SecretStr(secret(inst.ari.password_env, environ)),
            pbx_db_url=SecretStr(secret(inst.db_url_env, environ)) if inst.db_url_env else None,
        )
        app = (
            load(
                AppSettings,
                environ,
                app_api_url=inst.app.url,
                app_api_token=SecretStr(secret(inst.app.token_env, environ)),
            )
            if inst.app
            else load(AppSettings, environ, app_api_url="", app_api_token=None)
        )
        sip = load(
            SipSettings,
            environ,
            sip_host=inst.sip.host,
            sip_port=inst.sip.port,
            sip_transport=inst.sip.transport,
            sip_domain=inst.sip.domain,
        )
    except SettingsError as exc:
        raise SettingsError(
            "\n".join(f"instance {inst.name!r}: {line}" for line in str(exc).splitlines())
        ) from None
    return sections.given(pbx, app, sip)


def instance_registry(inst: Instance, classes: Iterable[type[Adapter]], sections: Sections) -> Registry:
    """The adapters that check tickets of this instance's customers: each of `classes` that the
    instance's sections configure."""
    return Registry.configure(classes, instance_sections(inst, sections))


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


def configured_directory(sections: Sections) -> Directory | None:
    """The directory named by `CONNBOT_PBX_DIRECTORY`, validated; None when it is not set."""
    path = sections(FleetSettings).pbx_directory
    return load_directory(path, sections.environ) if path else None
