"""Network probes from connbot's host to the PBX: DNS, TCP, TLS, SIP OPTIONS, latency.

The path is judged in order: name resolution, TCP to the SIP port (TCP/TLS transports) and to
ARI, TLS where it is used, then N SIP OPTIONS over the configured transport for round trip,
jitter and loss. The first failing layer is the outcome; every probe is in the evidence.
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Any

from integrations.base import ActionInput, ActionResult, Adapter, action, result
from integrations.net import client as probes
from integrations.net import models as m
from integrations.net.settings import NetSettings
from integrations.pbx.settings import PbxSettings, SipSettings
from integrations.settings import Sections


class NetAdapter(Adapter):
    name = "net"

    def __init__(
        self,
        sip: SipSettings,
        settings: NetSettings,
        ari: tuple[str, int] | None = None,
        ari_tls: bool = False,
    ):
        self.sip = sip
        self.settings = settings
        self.ari = ari
        self.ari_tls = ari_tls

    @classmethod
    def configure(cls, sections: Sections) -> NetAdapter | None:
        """Configured once a SIP host is known (`CONNBOT_SIP_HOST`)."""
        sip = sections(SipSettings)
        if not sip.sip_host:
            return None
        return cls.from_settings(sip, sections(NetSettings), sections(PbxSettings))

    @classmethod
    def from_settings(
        cls, sip: SipSettings, settings: NetSettings, pbx: PbxSettings | None = None
    ) -> NetAdapter:
        ari = pbx.ari_endpoint if pbx else None
        return cls(sip, settings, ari, bool(pbx and pbx.ari_url.startswith("https")))

    def _series(self, host: str) -> tuple[list[probes.Probe], dict[str, Any]]:
        s, transport = self.settings, self.sip.sip_transport
        cafile = str(s.net_tls_ca) if s.net_tls_ca else None
        series = []
        for i in range(s.net_probes):
            if i:
                time.sleep(s.net_probe_interval)
            series.append(
                probes.sip_options(
                    host,
                    self.sip.sip_port,
                    transport,
                    s.net_timeout,
                    cafile=cafile,
                    server_name=self.sip.sip_host,
                )
            )
        rtts = [p.ms for p in series if p.ok and p.ms is not None]
        stats: dict[str, Any] = {
            "sent": len(series),
            "answered": len(rtts),
            "loss_pct": round(100 * (len(series) - len(rtts)) / len(series), 1),
        }
        if rtts:
            stats.update(
                rtt_min_ms=min(rtts),
                rtt_avg_ms=round(statistics.fmean(rtts), 2),
                rtt_max_ms=max(rtts),
                jitter_ms=round(statistics.fmean(abs(a - b) for a, b in itertools.pairwise(rtts)), 2)
                if len(rtts) > 1
                else 0.0,
            )
        return series, stats

    @action(m.PathOutcome)
    def check_path(self, inp: ActionInput) -> ActionResult:
        """Probe the path to the PBX's SIP and ARI ports."""
        s, sip = self.settings, self.sip
        host, port, transport = sip.sip_host, sip.sip_port, sip.sip_transport
        done: list[probes.Probe] = []

        def finish(outcome: m.PathOutcome, summary: str, **extra: Any) -> ActionResult:
            return result(
                outcome,
                summary,
                target=f"{host}:{port}/{transport}",
                probes=[p.evidence() for p in done],
                **extra,
            ).found(
                server_path=outcome.value, sip_target=f"{host}:{port}/{transport}", **_seen(done, transport)
            )

        def failed(p: probes.Probe) -> ActionResult:
            return finish(m.PathOutcome(p.outcome), _said(p))

        if not probes.is_ip(host):
            done.append(probes.resolve(host, port))
            if not done[-1].ok:
                return failed(done[-1])
            done.append(probes.srv(sip.sip_domain or host, s.net_timeout))
        if transport in ("tcp", "tls"):
            done.append(probes.tcp_connect(host, port, s.net_timeout, "tcp_sip"))
        if self.ari:
            done.append(probes.tcp_connect(*self.ari, s.net_timeout, "tcp_ari"))
        for p in done:
            if not p.ok:
                if p.probe == "tcp_ari" and transport == "udp":  # SIP's own port too, for the record
                    done.append(probes.sip_options(host, port, transport, s.net_timeout))
                return failed(p)
        cafile = str(s.net_tls_ca) if s.net_tls_ca else None
        tls_targets = ([(host, port)] if transport == "tls" else []) + (
            [self.ari] if self.ari and self.ari_tls else []
        )
        for thost, tport in tls_targets:
            done.append(probes.tls_check(thost, tport, s.net_timeout, cafile))
            if not done[-1].ok:
                return failed(done[-1])
        series, stats = self._series(host)
        done.extend(series)
        if not stats["answered"]:
            worst = next((p for p in series if p.outcome != m.PathOutcome.SIP_NO_RESPONSE.value), series[-1])
            return failed(worst)
        other = "tcp" if transport == "udp" else "udp" if transport == "tcp" else None
        if other:  # the other plain transport, for the record only
            done.append(probes.sip_options(host, port, other, s.net_timeout))
        answer = series[[p.ok for p in series].index(True)].detail
        too = [
            f"{name} {stats[key]} {unit} > {limit:g}"
            for name, key, unit, limit in (
                ("round trip", "rtt_avg_ms", "ms", s.net_rtt_max_ms),
                ("jitter", "jitter_ms", "ms", s.net_jitter_max_ms),
                ("loss", "loss_pct", "%", s.net_loss_max_pct),
            )
            if stats.get(key, 0) > limit
        ]
        expiring = [
            p for p in done if p.probe == "tls" and p.data.get("days_left", 10**6) < s.net_tls_warn_days
        ]
        note = (
            "; certificate expires in "
            + ", ".join(f"{p.data['days_left']} days ({p.target})" for p in expiring)
            if expiring
            else ""
        )
        if too:
            return finish(
                m.PathOutcome.DEGRADED,
                f"The PBX answers SIP ({answer}) but the path is degraded: {'; '.join(too)}{note}.",
                stats=stats,
            )
        return finish(
            m.PathOutcome.OK,
            f"The path to {host}:{port}/{transport} is fine: SIP answers ({answer}), {stats['rtt_avg_ms']} "
            f"ms round trip, {stats['loss_pct']:g} % loss{note}.",
            stats=stats,
        )


TLS_FAULT = {
    m.PathOutcome.TLS_EXPIRED.value: "its certificate has expired",
    m.PathOutcome.TLS_UNTRUSTED.value: "its certificate is not trusted",
    m.PathOutcome.TLS_HOSTNAME_MISMATCH.value: "its certificate is for another name",
    m.PathOutcome.TLS_HANDSHAKE_FAILED.value: "the handshake fails",
}


def _said(p: probes.Probe) -> str:
    """What a failed probe shows, in one sentence: a refusal is an answer from the host's address
    (nothing listens, or a firewall there rejects), not silence."""
    if p.outcome == m.PathOutcome.DNS_FAILURE.value:
        return f"The PBX's name {p.target} does not resolve ({p.detail})."
    if p.outcome in TLS_FAULT:
        return f"TLS to {p.target} fails: {TLS_FAULT[p.outcome]} ({p.detail})."
    host, port = p.target.rsplit(":", 1)
    number, _, transport = port.partition("/")
    role = "ARI" if p.probe == "tcp_ari" else "TLS" if p.probe == "tls" else "SIP"
    icmp = ": ICMP port unreachable" if p.refused and p.data.get("icmp") else ""
    where = f"its {role} port {number} ({(transport or 'tcp').upper()}{icmp})"
    if p.refused:
        return (
            f"The PBX host {host} refuses connections on {where}: nothing listens there, or a "
            "firewall rejects them."
        )
    if p.outcome == m.PathOutcome.TCP_TIMEOUT.value:
        return f"The PBX host {host} does not answer on {where}: the connection timed out."
    if p.outcome == m.PathOutcome.SIP_NO_RESPONSE.value:
        return f"The PBX host {host} does not answer SIP OPTIONS on {where}: {p.detail}."
    return f"connbot cannot reach the PBX host {host} on {where}: {p.detail}."


SIP_PORT = {
    m.PathOutcome.OK.value: "answers",
    m.PathOutcome.TCP_TIMEOUT.value: "silent",
    m.PathOutcome.SIP_NO_RESPONSE.value: "silent",
}


def _seen(done: list[probes.Probe], transport: str) -> dict[str, Any]:
    """What the probes say about the SIP port over its transport (the last probe of it) and a
    refused ARI port. No route to the host says nothing about the port."""
    seen: dict[str, Any] = {}
    for p in done:
        state = "refuses" if p.refused else SIP_PORT.get(p.outcome)
        if p.probe in ("tcp_sip", f"sip_options_{transport}") and state:
            if p.probe == "tcp_sip" and p.ok:
                continue  # a TCP connect proves the port listens, not that SIP answers
            seen["sip_port"] = state
        if p.probe == "tcp_ari" and p.refused:
            seen["ari"] = "refused"
    return seen
