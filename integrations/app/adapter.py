"""Actions on the user's softphone through its backend's App Management API v1."""

from __future__ import annotations

from integrations.app import models as m
from integrations.base import ActionInput, ActionResult, Adapter, NotConfiguredError, action


class AppAdapter(Adapter):
    name = "app"

    @classmethod
    def configure(cls) -> AppAdapter | None:
        return None

    @action(m.StatusOutcome)
    def get_status(self, inp: ActionInput) -> ActionResult:
        """The registration state of the user's app."""
        raise NotConfiguredError("app.get_status")

    @action(m.ReconnectOutcome)
    def reconnect(self, inp: ActionInput) -> ActionResult:
        """Force the app to reconnect and wait for the result."""
        raise NotConfiguredError("app.reconnect")

    @action(m.LastErrorOutcome)
    def get_last_error(self, inp: ActionInput) -> ActionResult:
        """The exact error the app reports about its connection."""
        raise NotConfiguredError("app.get_last_error")

    @action(m.ConfigOutcome)
    def check_config(self, inp: ActionInput) -> ActionResult:
        """Compare the app's SIP settings with what the PBX expects."""
        raise NotConfiguredError("app.check_config")

    @action(m.FixConfigOutcome)
    def fix_config(self, inp: ActionInput) -> ActionResult:
        """Set the app's SIP settings to what the PBX expects and retest."""
        raise NotConfiguredError("app.fix_config")
