"""Prometheus metrics, read from the store at scrape time so every process reports the same totals."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.runs import sla
from bot.runs.intake import QUARANTINED
from bot.services import Services
from bot.state.models import (
    Effect,
    EffectState,
    Event,
    Incident,
    IncidentState,
    Prompt,
    PromptState,
    Run,
    RunState,
    StepResult,
    Ticket,
    utcnow,
)


class StoreCollector(Collector):
    def __init__(self, svc: Services):
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("connbot_runs", "Runs by state and end", labels=["state", "end"])
        steps = SummaryMetricFamily(
            "connbot_step_seconds", "Duration of automated steps by action", labels=["action"]
        )
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
        with self.svc.store.tx() as s:
            for state, kind, level, count in s.execute(
                select(Run.state, Run.end_kind, Run.end_level, func.count()).group_by(
                    Run.state, Run.end_kind, Run.end_level
                )
            ):
                end = "" if kind is None else (kind if kind == "close" else f"level{level}")
                runs.add_metric([state, end], count)
            duration = (
                func.sum(func.julianday(StepResult.finished_at) - func.julianday(StepResult.started_at))
                * 86400
                if self.svc.store.engine.dialect.name == "sqlite"
                else func.sum(func.extract("epoch", StepResult.finished_at - StepResult.started_at))
            )
            for action, count, total in s.execute(
                select(StepResult.action, func.count(), duration)
                .where(StepResult.mode == "auto")
                .group_by(StepResult.action)
            ):
                steps.add_metric([action], count, float(total or 0))
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
            left, near = self._sla(s)
        yield from self.incidents()
        queue = GaugeMetricFamily("connbot_queue_depth", "Tasks waiting in the queue")
        queue.add_metric([], self.svc.queue.depth())
        yield from (runs, steps, prompts, effects, failed, quarantined, queue, left, near)

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
            "Runs not ended whose ticket is near an SLA breach (CONNBOT_JIRA_SLA_WARN_MINUTES) or past it",
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
                select(Incident.id, Incident.pbx, func.count(Run.id))
                .join(Run, Run.incident_id == Incident.id)
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


def registry(svc: Services) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(StoreCollector(svc))
    return reg
