"""The ticket list as a work queue: search, filters, sorting and pages, for the desk's list and
`GET /api/tickets` alike.

Filters come from query parameters. An unknown parameter or a value that is not allowed is a
`BadRequestError` naming it, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.datastructures import MultiDict

from bot.errors import BadRequestError
from bot.state.models import Prompt, PromptState, Run, Ticket
from bot.web.views import ticket_row
from playbook.models import parse_duration

STATUSES = ("open", "closed")
WAITING = ("yes", "no")
SORTS = ("created", "updated", "level", "waiting", "key")
MAX_LIMIT = 500
MAX_SEARCH = 200
PARAMS = ("q", "status", "level", "waiting", "pbx", "min_age", "max_age", "sort", "page", "limit")


@dataclass(frozen=True)
class Query:
    """What an agent asked the list for. Empty strings and None mean "any"."""

    q: str = ""
    status: str = ""
    level: int | None = None
    waiting: str = ""
    pbx: str = ""
    min_age: float | None = None  # seconds since the ticket was created, at least
    max_age: float | None = None  # at most
    sort: str = "-created"
    page: int = 1
    limit: int = 50

    def args(self, **changes: Any) -> dict[str, str]:
        """The query as URL parameters (defaults left out), with `changes` applied."""
        raw = {
            "q": self.q,
            "status": self.status,
            "level": str(self.level or ""),
            "waiting": self.waiting,
            "pbx": self.pbx,
            "min_age": _seconds_text(self.min_age),
            "max_age": _seconds_text(self.max_age),
            "sort": self.sort,
            "page": str(self.page),
            "limit": str(self.limit),
        }
        raw.update({k: str(v) for k, v in changes.items()})
        defaults = {"sort": "-created", "page": "1", "limit": "50"}
        return {k: v for k, v in raw.items() if v and v != defaults.get(k)}

    @property
    def filtered(self) -> bool:
        return bool(
            self.q or self.status or self.level or self.waiting or self.pbx or self.min_age or self.max_age
        )


@dataclass
class Page:
    """One page of matching tickets, as list rows, and how many match in all."""

    query: Query
    rows: list[dict[str, Any]]
    total: int
    pbxs: list[str] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.query.limit))

    def as_json(self) -> dict[str, Any]:
        return {
            "tickets": self.rows,
            "total": self.total,
            "page": self.query.page,
            "pages": self.pages,
            "limit": self.query.limit,
        }


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _choice(name: str, value: str, allowed: Iterable[str]) -> str:
    allowed = list(allowed)
    if value and value not in allowed:
        raise BadRequestError(f"{name}: unknown value {value[:64]!r}; expected one of {', '.join(allowed)}")
    return value


def _whole(name: str, value: str, low: int, high: int) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequestError(f"{name}: expected a whole number from {low} to {high}, got {value[:64]!r}")
    return int(value)


def _age(name: str, value: str) -> float | None:
    if not value:
        return None
    try:
        return parse_duration(value)
    except ValueError:
        raise BadRequestError(
            f"{name}: expected a duration such as 30m, 4h or 2d, got {value[:64]!r}"
        ) from None


def parse(args: MultiDict[str, str], known_pbxs: Iterable[str]) -> Query:
    """The list query these URL parameters ask for; BadRequestError naming the first bad one."""
    unknown = sorted(set(args) - set(PARAMS))
    if unknown:
        raise BadRequestError(
            f"unknown filter {unknown[0][:64]!r}; the ticket list takes {', '.join(PARAMS)}"
        )
    repeated = [name for name in PARAMS if len(args.getlist(name)) > 1]
    if repeated:
        raise BadRequestError(f"{repeated[0]}: given more than once; the ticket list takes one value of each")
    get = {name: (args.get(name) or "").strip() for name in PARAMS}
    if len(get["q"]) > MAX_SEARCH:
        raise BadRequestError(f"q: the search text is longer than {MAX_SEARCH} characters")
    pbxs = sorted(set(known_pbxs))
    if get["pbx"] and get["pbx"] not in pbxs:
        raise BadRequestError(
            f"pbx: no PBX named {get['pbx'][:64]!r}; "
            + (f"known: {', '.join(pbxs)}" if pbxs else "no ticket has been checked against a PBX yet")
        )
    sort = get["sort"] or "-created"
    _choice("sort", sort.removeprefix("-"), SORTS)
    return Query(
        q=get["q"],
        status=_choice("status", get["status"], STATUSES),
        level=_whole("level", get["level"], 1, 9),
        waiting=_choice("waiting", get["waiting"], WAITING),
        pbx=get["pbx"],
        min_age=_age("min_age", get["min_age"]),
        max_age=_age("max_age", get["max_age"]),
        sort=sort,
        page=_whole("page", get["page"], 1, 1_000_000) or 1,
        limit=_whole("limit", get["limit"], 1, MAX_LIMIT) or 50,
    )


def known_pbxs(s: Session, configured: Iterable[str] = ()) -> list[str]:
    """PBX names a ticket can be filtered by: the configured instances and any a run was checked against."""
    seen = s.scalars(select(Run.pbx).where(Run.pbx.is_not(None)).distinct())
    return sorted({*configured, *(p for p in seen if p)})


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find(s: Session, query: Query, now: dt.datetime, pbxs: list[str]) -> Page:
    """The page of tickets `query` asks for, with the total that match."""
    waiting = (
        select(Run.ticket_id, func.min(Prompt.created_at).label("since"))
        .join(Prompt, Prompt.run_id == Run.id)
        .where(Prompt.state == PromptState.OPEN)
        .group_by(Run.ticket_id)
        .subquery()
    )
    activity = select(Run.ticket_id, func.max(Run.updated_at).label("at")).group_by(Run.ticket_id).subquery()
    updated = case((activity.c.at > Ticket.updated_at, activity.c.at), else_=Ticket.updated_at).label(
        "updated"
    )
    stmt: Select[Any] = (
        select(Ticket, waiting.c.since, updated)
        .outerjoin(waiting, waiting.c.ticket_id == Ticket.id)
        .outerjoin(activity, activity.c.ticket_id == Ticket.id)
    )
    if query.q:
        like = f"%{_escape_like(query.q.casefold())}%"
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).like(like, escape="\\")
                    for column in (Ticket.key, Ticket.summary, Ticket.reporter, Ticket.user_ref)
                )
            )
        )
    if query.status:
        stmt = stmt.where(Ticket.status == query.status)
    if query.level:
        stmt = stmt.where(Ticket.level == query.level)
    if query.waiting:
        stmt = stmt.where(
            waiting.c.since.is_not(None) if query.waiting == "yes" else waiting.c.since.is_(None)
        )
    if query.pbx:
        stmt = stmt.where(Ticket.runs.any(Run.pbx == query.pbx))
    if query.min_age is not None:
        stmt = stmt.where(Ticket.created_at <= now - dt.timedelta(seconds=query.min_age))
    if query.max_age is not None:
        stmt = stmt.where(Ticket.created_at >= now - dt.timedelta(seconds=query.max_age))
    total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    name, descending = query.sort.removeprefix("-"), query.sort.startswith("-")
    if name == "waiting":
        # by how long: "-waiting" puts the longest wait (the earliest open question) first; none last
        order = [waiting.c.since.is_(None), waiting.c.since.asc() if descending else waiting.c.since.desc()]
    else:
        column = {"created": Ticket.created_at, "updated": updated, "level": Ticket.level, "key": Ticket.id}
        order = [column[name].desc() if descending else column[name].asc()]
    stmt = (
        stmt.options(selectinload(Ticket.runs))
        .order_by(*order, Ticket.id.desc() if descending else Ticket.id.asc())
        .offset((query.page - 1) * query.limit)
        .limit(query.limit)
    )
    rows = [row(ticket, since, at, now) for ticket, since, at in s.execute(stmt)]
    return Page(query, rows, total, pbxs)


def row(
    ticket: Ticket, waiting_since: dt.datetime | None, updated: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """A ticket as one line of the work queue."""
    data = ticket_row(ticket)
    data["updated_at"] = updated.isoformat()
    data["pbx"] = ticket.runs[-1].pbx if ticket.runs else None
    data["waiting_since"] = waiting_since.isoformat() if waiting_since else None
    data["waiting_seconds"] = round((now - waiting_since).total_seconds()) if waiting_since else None
    return data
