"""The playbook's one error: a file that fails validation."""

from __future__ import annotations


class PlaybookError(Exception):
    """A playbook failed validation. `problems` lists each one, naming the step."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
