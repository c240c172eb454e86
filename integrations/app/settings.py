"""Settings of the app adapter: where the softphone's management backend (App Management API v1) is."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from integrations import http
from integrations.settings import Section, SettingsError


class AppSettings(Section):
    """`CONNBOT_APP_*`: the App Management API's base URL, token and how long to wait for actions."""

    app_api_url: str = Field("", description="base URL; connbot appends /v1/...")
    app_api_token: SecretStr | None = None
    app_api_timeout: float = Field(10.0, gt=0, description="seconds to wait for one API answer")
    app_reconnect_deadline: float = Field(
        40.0, gt=0, description="seconds to wait for a reconnect (UDP gives up after 32 s)"
    )
    app_poll_interval: float = Field(2.0, gt=0, description="seconds between polls of an asynchronous action")
    app_log_pages: int = Field(5, ge=1, description="at most this many pages of device logs are read")

    @field_validator("app_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http.base_url(value, "/v1")

    @property
    def configured(self) -> bool:
        return bool(self.app_api_url)

    def require_token(self) -> None:
        if not self.app_api_token or not self.app_api_token.get_secret_value():
            raise SettingsError("CONNBOT_APP_API_TOKEN: required when CONNBOT_APP_API_URL is set")
