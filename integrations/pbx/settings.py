"""Settings of the PBX adapter (ARI, the realtime database) and the SIP settings clients should use.

`SipSettings` is shared: the app adapter compares the app's configuration with it and the net
adapter probes the path to it. The PBX itself cannot tell which public host and port its clients
should use (only the transport it pins), so these live in connbot's configuration.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from integrations import http
from integrations.settings import Section, SettingsError

TRANSPORTS = ("udp", "tcp", "tls")


class PbxSettings(Section):
    """`CONNBOT_ARI_*` and `CONNBOT_PBX_*`: how connbot reaches Asterisk and what new accounts get."""

    ari_url: str = Field("", description="http(s)://pbx:8088; connbot appends /ari/...")
    ari_username: str = ""
    ari_password: SecretStr | None = None
    ari_verify: str = Field("true", description="TLS verification for ARI: true, false or a CA bundle path")
    ari_timeout: float = Field(5.0, gt=0, description="seconds to wait for one ARI answer")
    pbx_db_url: SecretStr | None = Field(
        None, description="postgresql://user:pw@host/db of the realtime tables"
    )
    pbx_db_timeout: float = Field(3.0, gt=0)
    pbx_db_slow_ms: float = Field(500.0, gt=0, description="a realtime query slower than this is db_slow")
    pbx_realm: str = Field("asterisk", min_length=1, description="digest realm when an auth object sets none")
    pbx_context: str = "from-internal"
    pbx_transport: str = Field("", description="transport object new endpoints are pinned to; empty: none")
    pbx_allow: str = "!all,ulaw,alaw"
    pbx_max_contacts: int = Field(1, ge=1)

    @field_validator("ari_url")
    @classmethod
    def _ari_url(cls, value: str) -> str:
        return http.base_url(value, "/ari")

    @field_validator("pbx_db_url")
    @classmethod
    def _db_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            return None
        if value is not None and not value.get_secret_value().startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql:// URL")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.ari_url)

    def require_credentials(self) -> None:
        """ARI needs both a user and a password once a URL is given."""
        missing = [
            name
            for name, value in (
                ("CONNBOT_ARI_USERNAME", self.ari_username),
                ("CONNBOT_ARI_PASSWORD", self.ari_password),
            )
            if not value
        ]
        if missing:
            raise SettingsError(
                "\n".join(f"{name}: required when CONNBOT_ARI_URL is set" for name in missing)
            )

    @property
    def verify(self) -> bool | str:
        lowered = self.ari_verify.strip().lower()
        if lowered in ("true", "1", "yes", ""):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return self.ari_verify

    @property
    def ari_endpoint(self) -> tuple[str, int] | None:
        """(host, port) of ARI, for the network probes."""
        if not self.ari_url:
            return None
        parts = urlsplit(self.ari_url)
        return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


class SipSettings(Section):
    """`CONNBOT_SIP_*`: the SIP server settings a correctly configured app uses."""

    sip_host: str = Field("", description="the PBX host name or address clients register with")
    sip_port: int = Field(5060, ge=1, le=65535)
    sip_transport: str = "udp"
    sip_domain: str = Field("", description="the SIP domain of the users' AORs; empty: not checked")

    @field_validator("sip_transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        if value.lower() not in TRANSPORTS:
            raise ValueError(f"expected one of {', '.join(TRANSPORTS)}")
        return value.lower()

    @field_validator("sip_host", "sip_domain")
    @classmethod
    def _host(cls, value: str) -> str:
        return value.strip().lower()
