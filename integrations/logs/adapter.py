"""Client-log analysis: classify log lines into root-cause classes."""

from __future__ import annotations

from integrations.base import ActionInput, ActionResult, Adapter, NotConfiguredError, action
from integrations.logs import models as m


class LogsAdapter(Adapter):
    name = "logs"

    @classmethod
    def configure(cls) -> LogsAdapter | None:
        return None

    @action(m.LogClass)
    def classify(self, inp: ActionInput) -> ActionResult:
        """Classify the client's recent log lines."""
        raise NotConfiguredError("logs.classify")
