"""A real `connbot worker` process whose adapters are scripted and slow, for tests that kill workers.

TEST_SCRIPT is a JSON object {action: outcome} (other actions are unsupported: a person is asked);
TEST_LOG a file where each action's start and end are appended; TEST_DELAY the seconds each action
takes. Settings come from CONNBOT_* as usual.
"""

from __future__ import annotations

import json
import os
import time

from bot.cli.server import work
from bot.settings import load_settings
from integrations.base import (
    ActionInput,
    ActionResult,
    ActionSpec,
    Adapter,
    Registry,
    UnsupportedError,
    discover,
)
from integrations.settings import Sections


class SlowAdapter(Adapter):
    name = "slow"

    def __init__(self, name: str, script: dict[str, str], log: str, delay: float):
        self.name = name  # type: ignore[misc]
        self.script, self.log, self.delay = script, log, delay

    @classmethod
    def configure(cls, sections: Sections) -> None:
        return None

    def _write(self, line: str) -> None:
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def run(self, spec: ActionSpec, inp: ActionInput) -> ActionResult:
        if spec.name not in self.script:
            raise UnsupportedError(f"the test scripts no outcome for {spec.name}: a person is asked")
        self._write(f"start {inp.ticket_key} {spec.name}")
        time.sleep(self.delay)
        outcome = self.script[spec.name]
        self._write(f"end {inp.ticket_key} {spec.name}")
        return ActionResult(outcome=outcome, summary=f"{spec.name}: {outcome}")


def registry_from_env() -> Registry:
    script: dict[str, str] = json.loads(os.environ["TEST_SCRIPT"])
    systems = sorted({action.split(".")[0] for action in script})
    adapters = [
        SlowAdapter(s, script, os.environ["TEST_LOG"], float(os.environ.get("TEST_DELAY", "0.2")))
        for s in systems
    ]
    return Registry(discover(), adapters)


if __name__ == "__main__":
    work(load_settings(), registry=registry_from_env())
