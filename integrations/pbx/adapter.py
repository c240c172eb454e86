"""Actions on the Asterisk PBX (the PrivateServer) over ARI, and its realtime database."""

from __future__ import annotations

from integrations.base import ActionInput, ActionResult, Adapter, NotConfiguredError, action
from integrations.pbx import models as m


class PbxAdapter(Adapter):
    name = "pbx"

    @classmethod
    def configure(cls) -> PbxAdapter | None:
        return None

    @action(m.AccountOutcome)
    def get_account(self, inp: ActionInput) -> ActionResult:
        """Whether the user's endpoint, auth and AOR exist."""
        raise NotConfiguredError("pbx.get_account")

    @action(m.CreateAccountOutcome, changes_account=True)
    def create_account(self, inp: ActionInput) -> ActionResult:
        """Create the user's auth, AOR and endpoint, in that order."""
        raise NotConfiguredError("pbx.create_account")

    @action(m.CredentialsOutcome)
    def compare_credentials(self, inp: ActionInput) -> ActionResult:
        """Compare the PBX's credentials with the app's fingerprint (HA1)."""
        raise NotConfiguredError("pbx.compare_credentials")

    @action(m.ResetPasswordOutcome, changes_account=True)
    def reset_password(self, inp: ActionInput) -> ActionResult:
        """Make the app's and the PBX's passwords agree, then reconnect."""
        raise NotConfiguredError("pbx.reset_password")

    @action(m.HealthOutcome)
    def health(self, inp: ActionInput) -> ActionResult:
        """Asterisk answers and its SIP modules run."""
        raise NotConfiguredError("pbx.health")

    @action(m.DatabaseOutcome)
    def check_database(self, inp: ActionInput) -> ActionResult:
        """The realtime database answers, quickly, and Asterisk's link to it is up."""
        raise NotConfiguredError("pbx.check_database")
