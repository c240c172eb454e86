"""Dashboard numbers for runs with known outcomes and timings."""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple

import pytest

from bot.state.models import Run, StepResult, Ticket, utcnow
from bot.web import dashboard

TODAY = utcnow().date()
BASE = dt.datetime.combine(TODAY, dt.time(10), tzinfo=dt.UTC)


def _run(
    s,
    n: int,
    start: dt.datetime,
    ended_after: float | None,
    end: tuple[str, int | None] | None,
    steps: list[tuple[str, int, str, float]],
) -> None:
    """A run of ticket DESK-n: steps are (title, level, mode, seconds), back to back from `start`."""
    ticket = Ticket(source="desk", key=f"DESK-{n}", summary="x")
    run = Run(
        ticket=ticket,
        playbook="connection_issues",
        created_at=start,
        state="ended" if end else "running",
        end_kind=end[0] if end else None,
        end_level=end[1] if end else None,
        ended_at=start + dt.timedelta(seconds=ended_after) if ended_after is not None else None,
    )
    at = start
    for seq, (title, level, mode, seconds) in enumerate(steps, 1):
        run.steps.append(
            StepResult(
                seq=seq,
                step=f"s{seq}",
                title=title,
                level=level,
                action="",
                mode=mode,
                outcome="x",
                started_at=at,
                finished_at=at + dt.timedelta(seconds=seconds),
            )
        )
        at += dt.timedelta(seconds=seconds)
    s.add(run)


def _known_runs(svc) -> None:
    yesterday = BASE - dt.timedelta(days=1)
    with svc.store.tx() as s:
        # closed at level 1 by the bot alone: 30 s
        _run(
            s,
            1,
            yesterday,
            30,
            ("close", None),
            [
                ("Check status", 1, "auto", 10),
                ("Force reconnect", 1, "auto", 20),
                ("Close - transient", 1, "end", 0),
            ],
        )
        # closed after a person fixed the configuration (waited 300 s): 600 s
        _run(
            s,
            2,
            yesterday + dt.timedelta(hours=1),
            600,
            ("close", None),
            [
                ("Check status", 1, "auto", 10),
                ("Fix config by hand", 1, "human", 300),
                ("Close - config", 1, "end", 0),
            ],
        )
        # escalated to level 3 after a person at level 2 (waited 1200 s): 3600 s
        _run(
            s,
            3,
            BASE,
            3600,
            ("escalate", 3),
            [
                ("Escalate to L2", 1, "end", 0),
                ("Check network", 2, "auto", 5),
                ("Fix network", 2, "human", 1200),
                ("Escalate to L3", 2, "end", 0),
            ],
        )
        # closed at level 1 after an approval (waited 60 s): 1200 s
        _run(
            s,
            4,
            BASE + dt.timedelta(hours=1),
            1200,
            ("close", None),
            [
                ("Create account", 1, "approval", 60),
                ("Create account", 1, "auto", 2),
                ("Close - account", 1, "end", 0),
            ],
        )
        # still going
        _run(s, 5, BASE + dt.timedelta(hours=2), None, None, [("Check status", 1, "auto", 1)])


def test_the_numbers(make_services):
    svc = make_services()
    _known_runs(svc)
    with svc.store.tx() as s:
        stats = dashboard.compute(s, TODAY, days=7)
    assert (stats.total, stats.ended, stats.in_progress) == (5, 4, 1)
    assert stats.per_day[-2:] == [(TODAY - dt.timedelta(days=1), 2), (TODAY, 3)] and len(stats.per_day) == 7
    assert stats.closed_l1_no_human == 1 and stats.share(stats.closed_l1_no_human) == 0.25
    assert stats.ends == {"closed": 3, "level 3": 1}
    assert dict(stats.resolved_by) == {"Force reconnect": 1, "Fix config by hand": 1, "Create account": 1}
    # resolution times 30, 600, 1200, 3600 s; human waits 300, 1200, 60 s
    assert astuple(stats.resolution) == pytest.approx((4, 900.0, 2880.0))
    assert astuple(stats.human_wait) == pytest.approx((3, 300.0, 1020.0))


def test_the_page_shows_them_with_charts(make_services):
    from bot.web.app import create_app

    svc = make_services()
    _known_runs(svc)
    page = create_app(svc.settings, svc).test_client().get("/dashboard").get_data(as_text=True)
    assert '<span class="num" id="runs-total">5</span>' in page
    assert '<span class="num" id="share-l1">25%</span>' in page
    assert (
        '<span class="num" id="resolution-median">15.0 min</span>' in page
        and '<span id="resolution-p90">48.0 min</span>' in page
    )
    assert (
        '<span class="num" id="wait-median">5.0 min</span>' in page
        and '<span id="wait-p90">17.0 min</span>' in page
    )
    assert "closed: 3 (75%)" in page and "level 3: 1 (25%)" in page
    assert page.count('<svg class="chart"') == 3


def test_an_empty_store_gives_an_empty_dashboard(make_services):
    from bot.web.app import create_app

    svc = make_services()
    page = create_app(svc.settings, svc).test_client().get("/dashboard").get_data(as_text=True)
    assert "No run has ended yet." in page and '<span class="num" id="share-l1">0%</span>' in page


def test_percentiles_interpolate_between_ranks():
    assert dashboard.percentile([], 50) is None
    assert dashboard.percentile([7.0], 90) == 7.0
    assert dashboard.percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == pytest.approx(9.1)
