"""Checking PBX instances from the command line (`connbot pbx check`) and listing them with their
last health (`connbot pbx list`). Each check runs the instance's own adapters, nothing else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bot.fleet.directory import Directory, Instance
from bot.state.models import PbxHealth
from bot.state.store import Store
from integrations.base import ActionInput, AdapterError, Registry
from integrations.net.models import PathOutcome
from integrations.pbx.models import DatabaseOutcome, HealthOutcome


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str


def _run(registry: Registry, action: str) -> tuple[str, str]:
    """(outcome, summary) of one action; an adapter error is the outcome "failed"."""
    try:
        res = registry.execute(action, ActionInput(ticket_key="pbx-check"))
    except AdapterError as exc:
        return "failed", f"{action} failed: {exc}"
    return res.outcome, res.summary


def check(inst: Instance, registry: Registry) -> list[Check]:
    """ARI reachable, credentials accepted, SIP modules running, database (when configured), SIP port."""
    outcome, summary = _run(registry, "pbx.health")
    reachable = outcome not in (HealthOutcome.DOWN.value, "failed")
    accepted = reachable and outcome != HealthOutcome.AUTH_ERROR.value
    modules = accepted and outcome == HealthOutcome.UP.value
    skipped = "not checked: ARI " + ("refused connbot's credentials" if reachable else "does not answer")
    checks = [
        Check("ari reachable", reachable, summary if not reachable else "ARI answers"),
        Check(
            "ari credentials", accepted, skipped if not reachable else summary if not accepted else "accepted"
        ),
        Check("sip modules", modules, summary if accepted else skipped),
    ]
    if inst.db_url_env:
        outcome, summary = _run(registry, "pbx.check_database")
        checks.append(Check("database", outcome == DatabaseOutcome.DB_OK.value, summary))
    outcome, summary = _run(registry, "net.check_path")
    checks.append(Check("sip port", outcome in (PathOutcome.OK.value, PathOutcome.DEGRADED.value), summary))
    return checks


def record(store: Store, name: str, checks: list[Check], now: dt.datetime) -> None:
    """Keep the newest result of an instance for `pbx list`."""
    with store.tx() as s:
        row = s.get(PbxHealth, name) or PbxHealth(name=name)
        row.checked_at, row.ok = now, all(c.ok for c in checks)
        row.detail = {c.name: {"ok": c.ok, "reason": c.reason} for c in checks}
        s.add(row)


def listing(store: Store, directory: Directory) -> list[dict[str, Any]]:
    """Each instance with its customers, where it is and its last recorded health."""
    with store.tx() as s:
        health = {h.name: h for h in s.scalars(select(PbxHealth))}
    rows = []
    for inst in directory.instances:
        h = health.get(inst.name)
        failed = [f"{k}: {v['reason']}" for k, v in (h.detail if h else {}).items() if not v["ok"]]
        rows.append(
            {
                "name": inst.name,
                "customers": inst.customers,
                "ari": inst.ari.url,
                "sip": f"{inst.sip.host}:{inst.sip.port}/{inst.sip.transport}",
                "app": inst.app.url if inst.app else None,
                "checked_at": h.checked_at.isoformat(timespec="seconds") if h else None,
                "ok": h.ok if h else None,
                "failed": failed,
            }
        )
    return rows
