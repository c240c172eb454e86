from __future__ import annotations

import io
import json
import logging
import re
import socket
import time
from pathlib import Path

import pytest
from flask import request
from sqlalchemy import func, select, text

from bot.runs import intake
from bot.services import Services
from bot.state.models import Event, Run, Ticket
from bot.web.app import create_app
from tests.fakes.adapters import scripted_registry
from tests.fakes.jira import configure, fixture, sign

SECRET = "s3cret"


def post(client, payload, secret=SECRET, headers=None, query=""):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if secret:
        hdrs["X-Hub-Signature"] = sign(body, secret)
    return client.post("/webhooks/jira" + query, data=body, headers=hdrs)


def process_events(svc):
    """What the worker does with stored events; runs are started but not advanced (the queue is emptied)."""
    with svc.store.tx() as s:
        ids = list(s.scalars(select(Event.id).order_by(Event.id)))
    for event_id in ids:
        intake.process(svc.context, event_id)
    svc.queue.huey.flush()


def count(svc, model):
    with svc.store.tx() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def app_svc(monkeypatch, make_services):
    configure(monkeypatch)
    svc = make_services(registry=scripted_registry({}))
    return create_app(services=svc).test_client(), svc


def test_a_deliverys_time_is_stored_as_the_store_writes_every_time(app_svc):
    """The webhook's INSERT bypasses the ORM; its timestamp is still the text the ORM writes (SQLite
    compares times as text), not the driver's own format with an offset."""
    client, svc = app_svc
    assert post(client, fixture("cloud_issue_created.json")).status_code == 202
    intake.file_desk_ticket(svc.context, "cannot connect", "", "a@example.com", "1001", idempotency_key="k")
    with svc.store.tx() as s:
        stored = dict(s.execute(text("SELECT source, received_at FROM events")).all())
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored["desk"])  # by the ORM
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", stored["jira"])


def test_signed_delivery_is_stored_and_accepted(app_svc):
    client, svc = app_svc
    resp = post(
        client, fixture("cloud_issue_created.json"), headers={"X-Atlassian-Webhook-Identifier": "d-1"}
    )
    assert resp.status_code == 202 and resp.json["status"] == "accepted"
    with svc.store.tx() as s:
        event = s.scalars(select(Event)).one()
        assert (event.source, event.delivery_id, event.kind, event.ticket_key) == (
            "jira",
            "d-1",
            "jira:issue_created",
            "VOIP-7",
        )


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, "sha1=abc", ""])
def test_wrong_signature_is_401_and_logged_without_the_body(app_svc, caplog, signature):
    client, svc = app_svc
    body = json.dumps(fixture("cloud_issue_created.json")).encode()
    with caplog.at_level(logging.WARNING):
        resp = client.post("/webhooks/jira", data=body, headers={"X-Hub-Signature": signature})
    assert resp.status_code == 401 and "X-Hub-Signature" in resp.json["message"]
    assert "VOIP-7" not in caplog.text and "rejected" in caplog.text
    assert count(svc, Event) == 0


def test_signature_with_another_secret_is_401(app_svc):
    client, _ = app_svc
    assert post(client, fixture("cloud_issue_created.json"), secret="other").status_code == 401


def test_missing_signature_is_401(app_svc):
    client, svc = app_svc
    resp = post(client, fixture("cloud_issue_created.json"), secret=None)
    assert resp.status_code == 401 and "missing X-Hub-Signature" in resp.json["message"]
    assert count(svc, Event) == 0


def test_token_fallback(monkeypatch, make_services):
    configure(monkeypatch, WEBHOOK_SECRET="", WEBHOOK_TOKEN="t" * 40)
    monkeypatch.delenv("CONNBOT_JIRA_WEBHOOK_SECRET")
    client = create_app(services=make_services(registry=scripted_registry({}))).test_client()
    payload = fixture("server_issue_created.json")
    assert post(client, payload, secret=None, query="?token=" + "t" * 40).status_code == 202
    assert post(client, payload, secret=None, query="?token=wrong").status_code == 401
    assert post(client, payload, secret=None).status_code == 401


def test_unconfigured_receiver_refuses_and_says_how_to_configure(make_services):
    client = create_app(services=make_services(registry=scripted_registry({}))).test_client()
    resp = post(client, fixture("server_issue_created.json"), secret=None)
    assert resp.status_code == 503 and "CONNBOT_JIRA_WEBHOOK_SECRET" in resp.json["message"]


def test_insecure_dev_switch_accepts_unsigned(monkeypatch, make_services):
    monkeypatch.setenv("CONNBOT_JIRA_INSECURE_DEV", "true")
    client = create_app(services=make_services(registry=scripted_registry({}))).test_client()
    assert post(client, fixture("server_issue_created.json"), secret=None).status_code == 202


def test_duplicate_deliveries_make_one_run(app_svc):
    client, svc = app_svc
    payload = fixture("cloud_issue_created.json")
    first = post(
        client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1", "X-Atlassian-Webhook-Retry": "0"}
    )
    again = post(
        client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1", "X-Atlassian-Webhook-Retry": "1"}
    )
    assert (first.status_code, again.status_code) == (202, 200) and again.json["status"] == "duplicate"
    # Without the identifier header the same event, issue and timestamp are one delivery too.
    assert post(client, payload).status_code == 202
    assert post(client, payload).status_code == 200
    # Jira's identifier is the key: a new one is another delivery, stored, whatever its body.
    assert post(client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-2"}).status_code == 202
    process_events(svc)
    assert count(svc, Event) == 3
    assert count(svc, Run) == 1


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not valid JSON"),
        (
            b'{"webhookEvent": "jira:issue_created", "timestamp": 1, '
            b'"issue": {"key": "VOIP-1", "fields": {"summary": "x"',
            "not valid JSON",
        ),
        (b"[1, 2]", "JSON object"),
        (
            json.dumps({"webhookEvent": "jira:issue_created", "timestamp": 1}).encode(),
            "issue: Field required",
        ),
        (
            json.dumps(
                {"webhookEvent": "jira:issue_created", "timestamp": "soon", "issue": {"key": "A-1"}}
            ).encode(),
            "timestamp",
        ),
        # Jira's timestamp is a JSON integer (epoch milliseconds): nothing else is read as one
        *(
            (
                json.dumps(
                    {"webhookEvent": "jira:issue_created", "timestamp": wrong, "issue": {"key": "A-1"}}
                ).encode(),
                "timestamp: Input should be a valid integer",
            )
            for wrong in (True, "1", 1.5, 1720046912109.0)
        ),
    ],
)
def test_malformed_and_truncated_bodies_are_400_saying_what(app_svc, body, says):
    client, svc = app_svc
    resp = post(client, body)
    assert resp.status_code == 400 and says in resp.json["message"]
    assert count(svc, Event) == 0


def test_a_signed_delivery_whose_other_fields_do_not_fit_is_stored_and_quarantined(app_svc):
    """The receiver reads only the event, the issue key and the timestamp; the worker reads the
    rest, and sets aside with the reason a payload it cannot read: kept, not refused with a 400."""
    client, svc = app_svc
    payload = fixture("cloud_issue_created.json")
    payload["issue"]["fields"]["summary"] = {"not": "text"}
    body = json.dumps(payload).encode()
    assert post(client, body).status_code == 202
    process_events(svc)
    with svc.store.tx() as s:
        event = s.scalars(select(Event)).one()
        assert event.payload == payload  # stored as it came
        assert event.outcome.startswith(intake.QUARANTINED) and "summary" in event.outcome
    listed = client.get("/api/events?state=quarantined").get_json()["events"]
    assert [e["id"] for e in listed] == [event.id]
    assert (count(svc, Ticket), count(svc, Run)) == (0, 0)


def test_a_body_with_many_brackets_is_read_the_long_way_to_the_same_delivery(app_svc):
    """Over 64 brackets the body is read by jsonbody (the depth check) instead of pydantic's parser;
    what intake stores is the same."""
    client, svc = app_svc
    payload = fixture("cloud_issue_created.json")
    payload["issue"]["fields"]["customfield_10100"] = [[i] for i in range(40)]
    assert sum(json.dumps(payload).count(c) for c in "{[") > 64
    assert post(client, payload).status_code == 202
    with svc.store.tx() as s:
        event = s.scalars(select(Event)).one()
    assert (event.kind, event.ticket_key, event.payload) == (
        payload["webhookEvent"],
        payload["issue"]["key"],
        payload,
    )


def test_oversized_body_is_413_with_a_content_length_or_chunked(monkeypatch, make_services, settings):
    """The same answer, naming the limit and its setting, and the same count as a refusal, whether
    the body's size is declared or found by reading it."""
    configure(monkeypatch)
    svc = make_services(
        settings=settings.model_copy(update={"max_body_bytes": 2048}), registry=scripted_registry({})
    )
    client = create_app(services=svc).test_client()
    payload = fixture("cloud_issue_created.json")
    payload["issue"]["fields"]["description"] = "x" * 5000
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": sign(body, SECRET)}
    declared = client.post("/webhooks/jira", data=body, headers=headers)
    chunked = client.post(
        "/webhooks/jira",
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked"},
        # as gunicorn hands on a chunked body: no Content-Length, the stream ended by the server
        environ_overrides={"CONTENT_LENGTH": "", "wsgi.input_terminated": True},
    )
    for resp in (declared, chunked):
        assert resp.status_code == 413 and resp.json == {
            "error": "Request Entity Too Large",
            "message": "the body is larger than CONNBOT_MAX_BODY_BYTES (2048 bytes)",
        }
    assert count(svc, Event) == 0
    text = client.get("/metrics").get_data(as_text=True)
    assert 'connbot_webhooks_refused_total{reason="too_large",source="jira"} 2.0' in text


SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "jira" / "webhooks"


@pytest.mark.skipif(not SPECS.is_dir(), reason=f"Jira's example payloads are not at {SPECS}")
def test_every_real_jira_payload_is_accepted(app_svc):
    """Jira's own deliveries (the shared specs' examples, Cloud and Server) all pass the receiver's
    checks, its integer-only timestamp among them."""
    client, svc = app_svc
    names = sorted(p.name for p in SPECS.glob("*.json"))
    assert names
    for name in names:
        assert post(client, (SPECS / name).read_bytes()).status_code == 202, name
    assert count(svc, Event) == len(names)


def test_server_and_cloud_payloads_become_tickets(app_svc):
    client, svc = app_svc
    for name in (
        "cloud_issue_created.json",
        "server_issue_created.json",
        "server_issue_updated.json",
        "cloud_comment_created.json",
    ):
        assert post(client, fixture(name)).status_code == 202, name
    process_events(svc)
    with svc.store.tx() as s:
        tickets = {t.key: t for t in s.scalars(select(Ticket))}
        cloud = tickets["VOIP-7"]
        assert cloud.reporter == "alice@example.com" and cloud.user_ref == "1001"
        assert cloud.fields["reporter"]["account_id"] == "557058:b2e19a89-93eb-479c-a287-d6943fe6b823"
        assert cloud.fields["error_text"] == "SIP/2.0 403 Forbidden - registration failed"
        assert cloud.matched and "can't connect" in cloud.match_reason
        server = tickets["TEST-4"]
        assert server.reporter == "admin@admin.com" and server.user_ref is None and server.matched is False
        assert tickets["TEST-11"].summary == "summary updated"
        assert tickets["TEST-24"].summary == "test"


def test_the_event_is_the_only_write_and_a_worker_started_later_takes_it_from_the_store(
    app_svc, make_services
):
    """Another process's worker (its own queue, no signal from the web process) finds the stored
    event by itself; the web request wrote nothing to the queue."""
    client, web = app_svc
    resp = post(
        client, fixture("cloud_issue_created.json"), headers={"X-Atlassian-Webhook-Identifier": "d-1"}
    )
    assert resp.status_code == 202
    assert web.queue.depth() == 0
    worker = make_services(registry=scripted_registry({}))
    taker = worker.queue.event_taker()
    taker.start()
    try:
        deadline = time.monotonic() + 5
        while count(web, Run) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        taker.stop()
        taker.join(5)
    with web.store.tx() as s:
        event = s.scalars(select(Event)).one()
        assert event.processed_at is not None and event.outcome.startswith("started run")
        assert [r.ticket.key for r in s.scalars(select(Run))] == ["VOIP-7"]


def test_the_common_delivery_is_answered_before_flask_as_the_view_answers_it(monkeypatch, make_services):
    """A signed delivery without a query string is stored and answered by `SignedDeliveries`, none of
    Flask's request handling run; the same delivery again with a query goes through the view, which
    answers it the same way (here: the duplicate). Both answers carry the security headers."""
    configure(monkeypatch)
    app = create_app(services=make_services(registry=scripted_registry({})))
    seen: list[str] = []
    app.before_request(lambda: seen.append(request.full_path))
    client, payload = app.test_client(), fixture("cloud_issue_created.json")
    first = post(client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1"})
    assert (first.status_code, first.data, seen) == (202, b'{"event":1,"status":"accepted"}\n', [])
    again = post(client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1"}, query="?from=jira")
    assert (again.status_code, again.data, seen) == (
        200,
        b'{"event":1,"status":"duplicate"}\n',
        ["/webhooks/jira?from=jira"],
    )
    for resp in (first, again):
        assert resp.content_type == "application/json"
        assert (
            resp.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in resp.headers
        )


def test_a_delivery_the_store_cannot_take_is_503_said_in_the_log_and_taken_when_jira_retries(app_svc, caplog):
    client, svc = app_svc
    payload = fixture("cloud_issue_created.json")
    with svc.store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE events RENAME TO events_away"))
    with caplog.at_level(logging.ERROR):
        resp = post(client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1"})
    assert (
        resp.status_code == 503 and resp.json["message"] == "the event could not be stored; Jira will retry"
    )
    assert "jira webhook for VOIP-7 could not be stored" in caplog.text
    with svc.store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE events_away RENAME TO events"))
    assert post(client, payload, headers={"X-Atlassian-Webhook-Identifier": "d-1"}).status_code == 202
    assert count(svc, Event) == 1


def test_a_delivery_while_the_database_refuses_connections_is_503_not_an_internal_error(
    monkeypatch, settings, caplog
):
    """PostgreSQL down (its port closed): the delivery is answered 503, which Jira retries, with the
    reason logged; not a 500 that says connbot hit an internal error."""
    with socket.socket() as sock:  # a port nothing listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(monkeypatch)
    down = settings.model_copy(update={"database_url": f"postgresql://connbot@127.0.0.1:{port}/connbot"})
    svc = Services.build(down, registry=scripted_registry({}))
    try:
        client = create_app(services=svc).test_client()
        with caplog.at_level(logging.ERROR):
            resp = post(client, fixture("cloud_issue_created.json"))
        assert (
            resp.status_code == 503
            and resp.json["message"] == "the event could not be stored; Jira will retry"
        )
        assert "jira webhook for VOIP-7 could not be stored" in caplog.text and "unhandled" not in caplog.text
    finally:
        svc.close()
