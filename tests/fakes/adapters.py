"""A scripted stand-in for adapters: each action answers the outcomes a test lists, in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.base import ActionInput, ActionResult, ActionSpec, Adapter, AdapterError, Registry, discover
from integrations.settings import Sections


class ScriptedAdapter(Adapter):
    """Answers `script[action]` outcomes in turn.

    An `ActionResult` is answered as it is, an `AdapterError` raised.
    """

    name = "scripted"

    def __init__(self, name: str, script: dict[str, list[Any]]):
        self.name = name  # type: ignore[misc]
        self.script = script
        self.calls: list[tuple[str, ActionInput]] = []

    @classmethod
    def configure(cls, sections: Sections) -> None:
        return None

    def run(self, spec: ActionSpec, inp: ActionInput) -> ActionResult:
        self.calls.append((spec.name, inp))
        answers = self.script.get(spec.name)
        if not answers:
            raise AssertionError(f"the test gave no outcome for {spec.name}")
        answer = answers.pop(0)
        if isinstance(answer, AdapterError):
            raise answer
        if isinstance(answer, ActionResult):
            return answer
        return ActionResult(outcome=answer, summary=f"{spec.name} found {answer}", evidence={"seen": answer})


# Outcomes of the first level's checks that find nothing to fix: the run hands the ticket to level 2.
LEVEL_1_CANNOT_FIX = {
    "app.get_status": ["failed"],
    "app.reconnect": ["still_failing"],
    "app.get_last_error": ["found"],
    "app.check_config": ["ok"],
    "pbx.get_account": ["exists"],
    "pbx.compare_credentials": ["match"],
}


def scripted_registry(
    script: dict[str, list[Any]], systems: Iterable[str] = ("app", "pbx", "net", "logs")
) -> Registry:
    """A registry whose configured adapters for `systems` answer from `script` (keys are action names)."""
    adapters = [
        ScriptedAdapter(system, {k: list(v) for k, v in script.items() if k.startswith(system + ".")})
        for system in systems
    ]
    return Registry(discover(), adapters)


def observed(outcome: str, **findings: Any) -> ActionResult:
    """A scripted answer that reports findings too, as the real adapters do."""
    return ActionResult(
        outcome=outcome, summary=f"found {outcome}", evidence={"seen": outcome}, facts=findings
    )


def account_not_found(user: str = "1001", **findings: Any) -> ActionResult:
    """`pbx.get_account` finding no account of `user` on a PBX whose ARI answers: its three objects
    missing, as the real adapter reports them."""
    missing = [f"auth {user}", f"aor {user}", f"endpoint {user}"]
    return observed("missing", ari="reachable", account="missing", account_missing=missing, **findings)
