"""Network probes from connbot's host to the PBX: DNS, TCP, TLS, SIP OPTIONS, latency."""

from __future__ import annotations

from integrations.base import ActionInput, ActionResult, Adapter, NotConfiguredError, action
from integrations.net import models as m


class NetAdapter(Adapter):
    name = "net"

    @classmethod
    def configure(cls) -> NetAdapter | None:
        return None

    @action(m.PathOutcome)
    def check_path(self, inp: ActionInput) -> ActionResult:
        """Probe the path to the PBX's SIP and ARI ports."""
        raise NotConfiguredError("net.check_path")
