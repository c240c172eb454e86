"""Settings of the log classifier: an optional extra catalogue of signatures."""

from __future__ import annotations

from pydantic import Field, FilePath

from integrations.settings import Section


class LogsSettings(Section):
    """`CONNBOT_LOGS_*`: where extra signatures live and how many matching lines to keep."""

    logs_catalogue: FilePath | None = Field(
        None, description="a YAML file of extra signatures, tried before the built-in ones"
    )
    logs_max_evidence: int = Field(
        20, ge=1, description="at most this many matching lines go into the evidence"
    )
