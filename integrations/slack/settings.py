"""Slack settings: `CONNBOT_SLACK_*`. Slack is off until the bot token is set.

Per-level names (`CONNBOT_SLACK_CHANNEL_L2`, `CONNBOT_SLACK_GROUP_L1`, ...) override or add to the
plain ones for the prompts of that level; lists are comma-separated Slack ids.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from integrations.settings import PREFIX, Section, SettingsError, load

ENV = f"{PREFIX}SLACK_"
LEVELS = (1, 2, 3)


def ids(value: str) -> frozenset[str]:
    """A comma-separated list of Slack ids as a set."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


class SlackSettings(Section):
    """How connbot reaches Slack, where it asks, and who may answer."""

    model_config = SettingsConfigDict(env_prefix=ENV, extra="ignore", env_file=None)

    bot_token: SecretStr | None = Field(None, description="bot token (xoxb-...); Slack is off without it")
    signing_secret: SecretStr | None = Field(
        None, description="the app's signing secret; every request is verified"
    )
    app_token: SecretStr | None = Field(None, description="app-level token (xapp-...) for Socket Mode")
    api_url: str = Field(
        "https://slack.com/api/", description="Web API base URL; a gateway or test server may stand in"
    )
    channel: str = Field("", description="channel id (or name) prompts are posted in")
    channel_l1: str = ""
    channel_l2: str = ""
    channel_l3: str = ""
    group_l1: str = Field("", description="user group id mentioned in reminders of level-1 prompts")
    group_l2: str = ""
    group_l3: str = ""
    answerers_l1: str = Field("", description="user ids who may answer level-1 prompts")
    answerers_l2: str = ""
    answerers_l3: str = ""
    answer_groups_l1: str = Field("", description="user group ids whose members may answer level-1 prompts")
    answer_groups_l2: str = ""
    answer_groups_l3: str = ""
    group_cache_seconds: float = Field(60, ge=0, description="how long user group members are remembered")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("expected an http(s):// URL")
        return value if value.endswith("/") else value + "/"

    def missing(self) -> list[str]:
        """The settings Slack cannot work without, once the bot token is set."""
        if self.bot_token is None:
            return []
        return [
            ENV + name
            for name, ok in (
                ("SIGNING_SECRET", self.signing_secret is not None),
                ("CHANNEL", bool(self.channel or self.channel_l1)),
            )
            if not ok
        ]

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None

    def _level(self, name: str, level: int) -> str:
        return str(getattr(self, f"{name}_l{level}", "") if level in LEVELS else "")

    def channel_for(self, level: int) -> str:
        return self._level("channel", level) or self.channel or self.channel_l1

    def group_for(self, level: int) -> str:
        return self._level("group", level)

    def answerers_for(self, level: int) -> frozenset[str]:
        return ids(self._level("answerers", level))

    def answer_groups_for(self, level: int) -> frozenset[str]:
        return ids(self._level("answer_groups", level))


def load_slack() -> SlackSettings | None:
    """The Slack settings if Slack is configured, else None. Raises SettingsError if half-configured."""
    return enabled(load(SlackSettings))


def enabled(section: SlackSettings) -> SlackSettings | None:
    """`section` if it configures Slack, else None. Raises SettingsError if half-configured."""
    if missing := section.missing():
        raise SettingsError(f"{ENV}BOT_TOKEN is set, so {' and '.join(missing)} must be set too")
    return section if section.enabled else None
