"""The lab (`connbot serve --lab`): each scenario's PBX, app backend and SIP port simulated on
loopback (by `simulators/`), speaking the real wire protocols, so a newcomer watches the real
adapters work a ticket. It is a simulation and starts only when asked for (`--lab` or
`CONNBOT_LAB=true`); its routes and its part of the desk are added by `bot.lab.web.install`."""

from __future__ import annotations

from bot.lab.lab import FIELD, Lab, LabSettings
from bot.lab.scenarios import DEFAULT, SCENARIOS, Scenario

__all__ = ["DEFAULT", "FIELD", "SCENARIOS", "Lab", "LabSettings", "Scenario"]
