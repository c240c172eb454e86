"""The playbook's one error: a file that fails validation; and how a validation error is worded."""

from __future__ import annotations

from pydantic_core import ErrorDetails


def message(error: ErrorDetails) -> str:
    """A validation error's message, without pydantic's "Value error, " before a validator's words."""
    return error["msg"].removeprefix("Value error, ")


class PlaybookError(Exception):
    """A playbook failed validation. `problems` lists each one, naming the step."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
