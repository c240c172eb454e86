"""Settings of the log classifier: an optional extra catalogue of signatures."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from bot.settings import Section


class LogsSettings(Section):
    """`CONNBOT_LOGS_*`: where extra signatures live and how many matching lines to keep."""

    logs_catalogue: Path | None = Field(None, description="a YAML file of extra signatures, tried before the built-in ones")
    logs_max_evidence: int = Field(20, ge=1, description="at most this many matching lines go into the evidence")

    @field_validator("logs_catalogue")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value
