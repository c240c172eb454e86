"""The state store's tables (SQLAlchemy 2 ORM). Schema changes go through Alembic migrations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class RunState(StrEnum):
    RUNNING = "running"  # a worker may take its next step
    WAITING = "waiting"  # for an answer to its open prompt
    HELD = "held"  # by its PBX's open incident, until the PBX is back
    ENDED = "ended"  # closed or escalated for good


class IncidentState(StrEnum):
    OPEN = "open"  # the PBX is failing: new tickets of its users join, their runs are held
    RECOVERING = "recovering"  # healthy again: the held runs are re-checked, batch by batch
    CLOSED = "closed"  # every held run was released; the parent issue is resolved


class PromptState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class EffectState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # for good, with its reason


E = TypeVar("E", bound=StrEnum)


class States(TypeDecorator[E]):
    """A state kept as its string value (as it always was), read back as the enum member."""

    impl = String(16)
    cache_ok = True

    def __init__(self, enum: type[E]):
        super().__init__()
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Any) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Any) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[Mapping[Any, Any]] = {
        dt.datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Ticket(Base):
    """A ticket connbot has heard of, in whichever ticket system it lives ("desk", "jira")."""

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    reporter: Mapped[str] = mapped_column(String(255), default="")
    user_ref: Mapped[str | None] = mapped_column(String(255))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")
    level: Mapped[int] = mapped_column(Integer, default=1)
    queue: Mapped[str | None] = mapped_column(String(255))
    matched: Mapped[bool | None] = mapped_column()
    match_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    comments: Mapped[list[Comment]] = relationship(back_populates="ticket", order_by="Comment.id")
    runs: Mapped[list[Run]] = relationship(back_populates="ticket", order_by="Run.id")


class Comment(Base):
    """A comment on a desk ticket. `marker` makes a retried write land once."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    marker: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="comments")


class Event(Base):
    """An inbound event (webhook delivery, desk filing), stored before it is answered."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("source", "delivery_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    ticket_key: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(Text, default="")


class DeskSession(Base):
    """A desk login, held on the server: the session cookie carries only its id, so logging out
    (deleting the row) ends it even for a copy of the cookie."""

    __tablename__ = "desk_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


class Counter(Base):
    """A count kept in the store, so that every process adds to (and `/metrics` reports) one total:
    `labels` is the canonical JSON of the labels (see `bot.state.counters`)."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class PlaybookVersion(Base):
    """A playbook as some run started on it, kept for as long as runs may need it: `version` is the
    SHA-256 of `content`, the playbook's canonical JSON (`playbook.loader.dump`)."""

    __tablename__ = "playbook_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One run of a playbook for a ticket: a persistent state machine any worker can advance.

    `active_ticket_id` equals `ticket_id` while the run is not ended and NULL after, so the
    unique constraint allows one active run per ticket on every database.
    """

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    active_ticket_id: Mapped[int | None] = mapped_column(unique=True)
    playbook: Mapped[str] = mapped_column(String(64))
    # The version of the playbook the run started on, which it follows to its end (NULL: a run
    # started before versions were kept, which follows the playbook loaded now).
    playbook_version: Mapped[str | None] = mapped_column(String(64), index=True)
    state: Mapped[RunState] = mapped_column(States(RunState), default=RunState.RUNNING, index=True)
    step: Mapped[str | None] = mapped_column(String(64))
    visits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    approved: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(default=0)
    retry_at: Mapped[dt.datetime | None] = mapped_column()
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    end_kind: Mapped[str | None] = mapped_column(String(16))
    end_level: Mapped[int | None] = mapped_column()
    end_reason: Mapped[str] = mapped_column(Text, default="")
    pbx: Mapped[str | None] = mapped_column(String(64))
    pbx_reason: Mapped[str] = mapped_column(Text, default="")
    # The incident that holds the run, or last held it (every incident it joined: `IncidentRun`),
    # and the class of the error the app reported (counted for the incident threshold).
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    error_class: Mapped[str | None] = mapped_column(String(32))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()

    ticket: Mapped[Ticket] = relationship(back_populates="runs")
    steps: Mapped[list[StepResult]] = relationship(back_populates="run", order_by="StepResult.seq")
    effects: Mapped[list[Effect]] = relationship(order_by="Effect.id", viewonly=True)
    actions: Mapped[list[OperatorAction]] = relationship(order_by="OperatorAction.id", viewonly=True)


class StepResult(Base):
    """What one visit of one step found: outcome (its code and its words), evidence (secrets redacted),
    timing."""

    __tablename__ = "step_results"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column()
    step: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[int] = mapped_column(default=1)
    action: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(64))  # the code: edges, the API and metrics read it
    said: Mapped[str] = mapped_column(String(200), default="")  # the outcome in words, for people
    summary: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    answered_by: Mapped[str | None] = mapped_column(String(255))
    answered_via: Mapped[str | None] = mapped_column(String(16))  # where: slack, desk, api, customer
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    run: Mapped[Run] = relationship(back_populates="steps")

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class Prompt(Base):
    """A question to a human. Its id is opaque and is all a Slack button or desk form carries."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    seq: Mapped[int] = mapped_column()
    step: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list[Any]] = mapped_column(default=list)
    text_label: Mapped[str | None] = mapped_column(Text)
    state: Mapped[PromptState] = mapped_column(States(PromptState), default=PromptState.OPEN, index=True)
    answer: Mapped[str | None] = mapped_column(String(64))
    answer_text: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(255))
    answered_via: Mapped[str | None] = mapped_column(String(16))
    answered_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    remind_at: Mapped[dt.datetime | None] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    channel_refs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    handed_to: Mapped[str | None] = mapped_column(String(255))  # whom an operator handed it to

    run: Mapped[Run] = relationship()


class OperatorAction(Base):
    """A person's action on a run, a prompt or an effect (`bot.runs.operate`): who, when, why, and
    what it did in a sentence (also written on the ticket)."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    verb: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    effect_id: Mapped[int | None] = mapped_column()
    prompt_id: Mapped[str | None] = mapped_column(String(32))
    who: Mapped[str] = mapped_column(String(255))
    via: Mapped[str] = mapped_column(String(16))
    why: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PbxRoute(Base):
    """A person's answer to "which PBX serves this customer?", remembered for the customer key."""

    __tablename__ = "pbx_routes"

    customer_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64))
    remembered_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PbxHealth(Base):
    """The last check of a PBX instance (`connbot pbx check`, or the periodic one): one entry per
    check in `detail`."""

    __tablename__ = "pbx_health"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    checked_at: Mapped[dt.datetime] = mapped_column()
    ok: Mapped[bool] = mapped_column()
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # when the periodic check (`CONNBOT_HEALTH_CHECK_SECONDS`) looks at the instance next
    due_at: Mapped[dt.datetime | None] = mapped_column()


class Incident(Base):
    """One PBX instance failing in one way (its cause), and the tickets of its users held meanwhile.

    `active_key` is `pbx|cause` until the incident is closed and NULL after, so the unique constraint
    allows one open incident per instance and cause on every database. `pbx` is "" for the one PBX
    of a set-up without a PBX directory. `version` counts changes the Slack message shows;
    `shown_version` is the one it shows."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64), index=True)
    cause: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    statement: Mapped[str] = mapped_column(Text, default="")
    active_key: Mapped[str | None] = mapped_column(String(140), unique=True)
    state: Mapped[IncidentState] = mapped_column(
        States(IncidentState), default=IncidentState.OPEN, index=True
    )
    opened_by: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    health: Mapped[str] = mapped_column(Text, default="")
    checks: Mapped[int] = mapped_column(default=0)
    checked_at: Mapped[dt.datetime | None] = mapped_column()
    next_check_at: Mapped[dt.datetime] = mapped_column()
    restored_by: Mapped[str | None] = mapped_column(String(255))
    restored_via: Mapped[str | None] = mapped_column(String(16))  # where they said so: slack, desk, ...
    dismissed_by: Mapped[str | None] = mapped_column(String(255))
    dismissed_via: Mapped[str | None] = mapped_column(String(16))  # where they said so: slack, desk, ...
    owner: Mapped[str | None] = mapped_column(String(255))
    owner_via: Mapped[str | None] = mapped_column(String(16))  # where they took it: slack, desk, ...
    parent_key: Mapped[str | None] = mapped_column(String(64))
    parent_resolved: Mapped[bool] = mapped_column(default=False)
    parent_error: Mapped[str] = mapped_column(Text, default="")  # why no parent issue could be made
    message: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    shown_version: Mapped[int] = mapped_column(default=0)
    remind_at: Mapped[dt.datetime | None] = mapped_column()
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recovered_at: Mapped[dt.datetime | None] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    close_reason: Mapped[str] = mapped_column(Text, default="")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column()


class IncidentRun(Base):
    """A run that joined an incident: the incident's tickets, kept after they are released (a ticket
    may join a later incident too)."""

    __tablename__ = "incident_runs"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True, index=True)


class Effect(Base):
    """A side effect on an outside system, recorded (with an idempotency key) before it is made."""

    __tablename__ = "effects"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[EffectState] = mapped_column(States(EffectState), default=EffectState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    # After an attempt that failed and is to be retried: when the next attempt is due (not before).
    retry_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column()
