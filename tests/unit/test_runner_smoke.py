from __future__ import annotations

from bot import intake
from bot.models import Run, Ticket
from tests.fakes.adapters import scripted_registry


def test_a_ticket_the_app_fixes_by_reconnecting_is_closed(make_services):
    svc = make_services(registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]}))
    ticket, run_id = intake.file_desk_ticket(svc, "Alice can't connect", "", "alice@example.com", "1001")
    svc.queue.run_pending()
    with svc.store.tx() as s:
        run = s.get(Run, run_id)
        assert run.state == "ended" and run.end_kind == "close"
        assert [r.step for r in run.steps] == ["check_status", "force_reconnect", "close_transient"]
        t = s.get(Ticket, ticket.id)
        assert t.status == "closed"
        assert "temporary network problem" in t.comments[-1].body
