"""Settings of the network probes. Targets come from `CONNBOT_SIP_*` and `CONNBOT_ARI_URL`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from integrations.settings import Section


class NetSettings(Section):
    """`CONNBOT_NET_*`: how many probes, how long to wait, what counts as degraded."""

    net_timeout: float = Field(
        2.0, gt=0, description="seconds to wait for one DNS answer, connect or SIP reply"
    )
    net_probes: int = Field(5, ge=1, le=100, description="SIP OPTIONS probes for RTT, jitter and loss")
    net_probe_interval: float = Field(0.2, ge=0, description="seconds between two probes")
    net_rtt_max_ms: float = Field(300.0, gt=0, description="average round trip above this is degraded")
    net_jitter_max_ms: float = Field(30.0, gt=0)
    net_loss_max_pct: float = Field(1.0, ge=0, le=100)
    net_tls_ca: Path | None = Field(
        None, description="CA bundle that signs the PBX's certificate (private CA)"
    )
    net_tls_warn_days: int = Field(
        14, ge=0, description="a certificate expiring sooner than this is noted in the summary"
    )
