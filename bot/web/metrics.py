"""Prometheus metrics, read at scrape time so every process reports the same totals: the gauges and
histograms from the runs, steps and prompts themselves, the counters from the store's `counters` (see
`bot.state.counters`), which every process adds to, the queue's depth from the queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from flask import Flask, Response, request
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session

from bot.runs import sla
from bot.runs.intake import QUARANTINED
from bot.services import Services
from bot.state import counters
from bot.state.models import (
    Effect,
    EffectState,
    Event,
    Incident,
    IncidentRun,
    IncidentState,
    Prompt,
    PromptState,
    Run,
    RunState,
    StepResult,
    Ticket,
    utcnow,
)
from bot.state.outage import OUTAGE_ERRORS, Outage
from bot.state.store import Store

log = logging.getLogger(__name__)
HOUR = 3600.0
STEP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
WAIT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 24 * HOUR, 72 * HOUR)
RESOLUTION_BUCKETS = (300.0, 900.0, HOUR, 4 * HOUR, 8 * HOUR, 24 * HOUR, 72 * HOUR, 168 * HOUR)


class StoreCollector(Collector):
    """Every metric, by the dependency it is read from. One that cannot be reached leaves its metrics
    out of the scrape, which still answers with the rest and `connbot_dependency_up` 0 for it; its
    outage is said in the log once, and once when it is back (`Outage`), not a traceback a scrape."""

    def __init__(self, svc: Services):
        self.svc = svc
        self.sources = {
            "database": (self.stored, Outage("the database (metrics)", log)),
            "queue": (self.queued, Outage("the queue (metrics)", log)),
        }

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "connbot_dependency_up",
            "Whether the dependency could be read for this scrape (0: its metrics are left out)",
            labels=["dependency"],
        )
        for name, (read, outage) in self.sources.items():
            try:
                families = list(read())
            except OUTAGE_ERRORS as exc:
                outage.failed(exc)
                up.add_metric([name], 0)
            else:
                outage.ok()
                up.add_metric([name], 1)
                yield from families
        yield up

    def queued(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily("connbot_queue_depth", "Tasks waiting in the queue")
        queue.add_metric([], self.svc.queue.depth())
        yield queue

    def stored(self) -> Iterator[Metric]:
        """The metrics read from the store."""
        runs = GaugeMetricFamily("connbot_runs", "Runs by state and end", labels=["state", "end"])
        prompts = GaugeMetricFamily("connbot_prompts_open", "Questions waiting for a person")
        effects = GaugeMetricFamily("connbot_effects_pending", "Side effects recorded but not yet made")
        failed = GaugeMetricFamily(
            "connbot_effects_failed",
            "Side effects given up on (refused, or still failing after every attempt)",
            labels=["kind"],
        )
        quarantined = GaugeMetricFamily(
            "connbot_events_quarantined",
            "Inbound events set aside for good: they cannot be processed (/api/events?state=quarantined)",
        )
        refused = CounterMetricFamily(
            "connbot_webhooks_refused",
            "Inbound webhook requests refused, by source and reason",
            labels=["source", "reason"],
        )
        adapter_errors = CounterMetricFamily(
            "connbot_adapter_errors",
            "Failed calls of adapter actions, by system and kind of error",
            labels=["system", "kind"],
        )
        with self.svc.store.tx() as s:
            for state, kind, level, count in s.execute(
                select(Run.state, Run.end_kind, Run.end_level, func.count()).group_by(
                    Run.state, Run.end_kind, Run.end_level
                )
            ):
                runs.add_metric([state, _end(kind, level)], count)
            histograms = list(self._histograms(s))
            left, near = self._sla(s)
            prompts.add_metric(
                [],
                s.scalar(select(func.count()).select_from(Prompt).where(Prompt.state == PromptState.OPEN))
                or 0,
            )
            effects.add_metric(
                [],
                s.scalar(select(func.count()).select_from(Effect).where(Effect.state == EffectState.PENDING))
                or 0,
            )
            for kind, count in s.execute(
                select(Effect.kind, func.count())
                .where(Effect.state == EffectState.FAILED)
                .group_by(Effect.kind)
            ):
                failed.add_metric([kind], count)
            quarantined.add_metric(
                [],
                s.scalar(
                    select(func.count())
                    .select_from(Event)
                    .where(Event.outcome.startswith(QUARANTINED, autoescape=True))
                )
                or 0,
            )
            for family, name, names in (
                (refused, counters.WEBHOOKS_REFUSED, ("source", "reason")),
                (adapter_errors, counters.ADAPTER_ERRORS, ("system", "kind")),
            ):
                for labels, value in counters.totals(s, name):
                    family.add_metric([labels.get(n, "") for n in names], value)
        yield from self.incidents()
        yield from (
            runs,
            *histograms,
            prompts,
            effects,
            failed,
            quarantined,
            refused,
            adapter_errors,
            left,
            near,
        )

    def incidents(self) -> Iterator[Metric]:
        """Open incidents, tickets per incident, time to recovery, time from recovery to all closed."""
        states = GaugeMetricFamily("connbot_incidents", "Incidents by state", labels=["state"])
        tickets = GaugeMetricFamily(
            "connbot_incident_tickets",
            "Tickets joined to each incident not yet closed",
            labels=["incident", "pbx"],
        )
        recovery = SummaryMetricFamily(
            "connbot_incident_recovery_seconds", "From an incident's opening to its PBX being back"
        )
        settle = SummaryMetricFamily(
            "connbot_incident_settle_seconds",
            "From a PBX being back to every ticket of its incident released",
        )
        with self.svc.store.tx() as s:
            by_state = dict(s.execute(select(Incident.state, func.count()).group_by(Incident.state)).all())
            for state in IncidentState:
                states.add_metric([state], by_state.get(state, 0))
            joined = (
                select(Incident.id, Incident.pbx, func.count(IncidentRun.run_id))
                .join(IncidentRun, IncidentRun.incident_id == Incident.id)
                .where(Incident.state != IncidentState.CLOSED)
                .group_by(Incident.id, Incident.pbx)
            )
            for incident_id, pbx, count in s.execute(joined):
                tickets.add_metric([str(incident_id), pbx], count)
            timed = s.execute(
                select(Incident.opened_at, Incident.recovered_at, Incident.closed_at).where(
                    Incident.recovered_at.is_not(None)
                )
            ).all()
        back = [(r - o).total_seconds() for o, r, _ in timed if r is not None]
        done = [(c - r).total_seconds() for _, r, c in timed if r is not None and c is not None]
        recovery.add_metric([], len(back), sum(back))
        settle.add_metric([], len(done), sum(done))
        yield from (states, tickets, recovery, settle)

    @staticmethod
    def _sla(s: Session) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        """By SLA name, over the tickets of runs not ended: the least time left, and how many are near
        a breach (or past it)."""
        left = GaugeMetricFamily(
            "connbot_sla_seconds_left",
            "Least time left before an SLA breach among the tickets of runs not ended (negative: breached)",
            labels=["sla"],
        )
        near = GaugeMetricFamily(
            "connbot_sla_near_breach",
            "Runs not ended whose ticket is near an SLA breach (within the warning minutes) or past it",
            labels=["sla"],
        )
        now, least, counts = utcnow(), dict[str, float](), dict[str, int]()
        active = select(Ticket).join(Run, Run.ticket_id == Ticket.id).where(Run.state != RunState.ENDED)
        for ticket in s.scalars(active):
            for clock in sla.clocks(ticket):
                seconds = clock.seconds_left(now)
                if seconds is None:
                    continue
                least[clock.name] = min(seconds, least.get(clock.name, seconds))
                counts[clock.name] = counts.get(clock.name, 0) + int(clock.near(now))
        for name in sorted(least):
            left.add_metric([name], least[name])
            near.add_metric([name], counts[name])
        return left, near

    def _histograms(self, s: Session) -> Iterator[HistogramMetricFamily]:
        seconds = _seconds(self.svc.store)
        yield _histogram(
            s,
            HistogramMetricFamily(
                "connbot_step_seconds", "Duration of automated steps by action", labels=["action"]
            ),
            select(StepResult.action).where(StepResult.mode == "auto"),
            seconds(StepResult.finished_at, StepResult.started_at),
            STEP_BUCKETS,
        )
        yield _histogram(
            s,
            HistogramMetricFamily(
                "connbot_question_wait_seconds",
                "How long questions waited for a person: until answered, or until they expired",
                labels=["kind", "state"],
            ),
            select(Prompt.kind, Prompt.state).where(
                Prompt.state.in_([PromptState.ANSWERED, PromptState.EXPIRED])
            ),
            seconds(func.coalesce(Prompt.answered_at, Prompt.expires_at), Prompt.created_at),
            WAIT_BUCKETS,
        )
        yield _histogram(
            s,
            HistogramMetricFamily(
                "connbot_resolution_seconds",
                "Time from a run's start to its end (closed, or escalated for good to a level)",
                labels=["end"],
            ),
            select(Run.end_kind, Run.end_level).where(Run.state == RunState.ENDED),
            seconds(Run.ended_at, Run.created_at),
            RESOLUTION_BUCKETS,
            lambda kind, level: [_end(kind, level)],
        )


def _end(kind: str | None, level: int | None) -> str:
    return "" if kind is None else (f"level{level}" if kind == "escalate" else kind)


def _seconds(store: Store) -> Callable[[Any, Any], ColumnElement[Any]]:
    """A SQL expression of the seconds between two timestamps, on this store's database."""
    if store.engine.dialect.name == "sqlite":
        return lambda later, earlier: (func.julianday(later) - func.julianday(earlier)) * 86400
    return lambda later, earlier: func.extract("epoch", later - earlier)


def _histogram(
    s: Session,
    family: HistogramMetricFamily,
    labels: Select[*tuple[Any, ...]],
    value: ColumnElement[Any],
    buckets: Sequence[float],
    label_values: Callable[..., list[str]] | None = None,
) -> HistogramMetricFamily:
    """`family` filled in one query: `labels` grouped, each group's count, sum of `value` and the
    count at or below each bucket's bound."""
    width = len(labels.selected_columns)
    query = labels.add_columns(
        func.count(), func.sum(value), *(func.sum(case((value <= b, 1), else_=0)) for b in buckets)
    ).group_by(*labels.selected_columns)
    for row in s.execute(query):
        count, total, *at_most = row[width:]
        family.add_metric(
            label_values(*row[:width]) if label_values else [str(v) for v in row[:width]],
            [*((str(b), float(n or 0)) for b, n in zip(buckets, at_most, strict=True)), ("+Inf", count)],
            float(total or 0),
        )
    return family


# What a refusal of each status means, for `connbot_webhooks_refused{reason}` (a closed set).
REASONS = {
    400: "malformed",
    401: "unauthenticated",
    404: "not_ours",
    405: "wrong_method",
    413: "too_large",
    503: "unavailable",
}
WEBHOOKS = {"/webhooks/jira": "jira", "/slack/events": "slack"}


def count_refusals(app: Flask, store: Store) -> None:
    """Count every refused request to a webhook (an answer of 400 or more), by source and reason."""

    @app.after_request
    def refused(resp: Response) -> Response:
        if resp.status_code >= 400 and (source := WEBHOOKS.get(request.path)) is not None:
            reason = REASONS.get(resp.status_code, "other")
            counters.count(store, counters.WEBHOOKS_REFUSED, source=source, reason=reason)
        return resp


def registry(svc: Services) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(svc))
    return reg
