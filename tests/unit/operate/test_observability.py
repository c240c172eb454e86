"""What an operator sees of connbot at work: /metrics counters and histograms, and JSON log lines
that name the run, the ticket, the step and the PBX."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re

from prometheus_client.parser import text_string_to_metric_families

from bot import logs
from bot.runs import intake
from bot.state.models import Run
from bot.web.app import create_app
from integrations.base import PermanentError, TransientError, UnsupportedError
from tests.fakes.adapters import scripted_registry
from tests.unit.test_runner import answer, file, load, open_prompt

SECRET = "jira-webhook-secret-for-tests"


def samples(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_adapter_errors_and_measure_steps_questions_and_resolution(
    backend_settings, make_services
):
    # the status check is refused for good; the reconnection is not supported: a person is asked
    svc = make_services(
        settings=backend_settings,
        registry=scripted_registry(
            {
                "app.get_status": [PermanentError("the backend refused the request")],
                "app.reconnect": [UnsupportedError("this app cannot be told to reconnect")],
            },
            systems=("app",),
        ),
    )
    client = create_app(services=svc).test_client()
    _, run_id = file(svc)
    answer(svc, open_prompt(svc, run_id).id, "reconnected")
    run, steps, _, _ = load(svc, run_id)
    assert run.end_kind == "close" and steps[0] == ("check_status", "error")

    got = samples(client)
    assert got[("connbot_adapter_errors_total", (("kind", "permanent"), ("system", "app")))] == 1
    assert got[("connbot_adapter_errors_total", (("kind", "unsupported"), ("system", "app")))] == 1
    # one automated step, under every bucket of a second or more
    assert got[("connbot_step_seconds_count", (("action", "app.get_status"),))] == 1
    assert got[("connbot_step_seconds_bucket", (("action", "app.get_status"), ("le", "1.0")))] == 1
    question = (("kind", "question"), ("state", "answered"))
    assert got[("connbot_question_wait_seconds_count", question)] == 1
    assert got[("connbot_question_wait_seconds_bucket", (*question[:1], ("le", "60.0"), question[1]))] == 1
    assert got[("connbot_resolution_seconds_count", (("end", "close"),))] == 1
    assert got[("connbot_resolution_seconds_bucket", (("end", "close"), ("le", "+Inf")))] == 1


def test_refused_webhooks_are_counted_by_source_and_reason_across_processes(
    backend_settings, make_services, monkeypatch
):
    monkeypatch.setenv("CONNBOT_JIRA_WEBHOOK_SECRET", SECRET)
    svc = make_services(settings=backend_settings, registry=scripted_registry({}, systems=()))
    # two web apps on one store (as two processes are): each refuses, either one's /metrics reports both
    web1, web2 = (create_app(services=svc).test_client() for _ in range(2))
    assert web1.post("/webhooks/jira", json={"webhookEvent": "jira:issue_created"}).status_code == 401
    body = b"[1, 2]"
    signed = {"X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    resp = web2.post("/webhooks/jira", data=body, headers=signed, content_type="application/json")
    assert resp.status_code == 400
    assert web2.post("/webhooks/jira", json={}).status_code == 401
    for client in (web1, web2):
        got = samples(client)
        assert (
            got[("connbot_webhooks_refused_total", (("reason", "unauthenticated"), ("source", "jira")))] == 2
        )
        assert got[("connbot_webhooks_refused_total", (("reason", "malformed"), ("source", "jira")))] == 1


def test_json_log_lines_carry_the_run_the_ticket_the_step_and_the_pbx(make_services, capsys, caplog):
    svc = make_services(
        registry=scripted_registry({"app.get_status": ["failed"], "app.reconnect": ["reconnected"]})
    )
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler := logs.handler("json"))
    try:
        ticket, run_id = intake.file_desk_ticket(svc.context, "can't connect", "", "a@example.com", "1001")
        with svc.store.tx() as s:  # routed to a PBX instance before its first step
            s.get(Run, run_id).pbx = "acme"
        svc.queue.run_pending()
        logging.getLogger("bot").warning("not about any run\nforged: line")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    stepped = [line for line in lines if line["message"].startswith(f"run {run_id} step ")]
    assert [line["step"] for line in stepped] == ["check_status", "force_reconnect", "close_transient"]
    for line in stepped:
        assert line["run"] == run_id and line["ticket"] == ticket.key and line["pbx"] == "acme"
        assert line["level"] == "INFO" and line["logger"] == "bot.runs.records"
        assert line["time"].endswith("+00:00")
    # outside a run: no run fields; a message with a line break is still one line
    assert lines[-1] == {**lines[-1], "message": "not about any run\nforged: line", "level": "WARNING"}
    assert not {"run", "ticket", "step", "pbx"} & set(lines[-1])


FORGED = "busy\n2026-01-01 00:00:00,000 ERROR bot.web.auth: FORGED admin login\x1b[2J\r"


def test_text_log_lines_cannot_be_forged_by_an_outside_systems_error_text(make_services, capsys, caplog):
    """The app backend's error text, with a line break, a carriage return and a terminal escape in
    it, is logged on the failing step's line, escaped; a traceback stays under its record, indented."""
    svc = make_services(
        registry=scripted_registry(
            {"app.get_status": [TransientError(FORGED)], "app.reconnect": ["reconnected"]}
        )
    )
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler := logs.handler("text"))
    try:
        intake.file_desk_ticket(svc.context, "can't connect", "", "a@example.com", "1001")
        svc.queue.run_pending()
        try:
            raise ValueError(FORGED)
        except ValueError:
            logging.getLogger("bot").exception("a failure about %s", "DESK-1\nforged: line")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = capsys.readouterr().err.split("\n")
    assert lines[-1] == ""
    records = [line for line in lines[:-1] if not line.startswith("    ")]
    assert all(
        re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [a-z_.]+: ", r) for r in records
    )
    assert not any("FORGED" in r.split(": ", 1)[0] for r in records)
    assert not any(c in "".join(lines) for c in "\x1b\r")
    failed = [r for r in records if "app.get_status failed" in r]
    assert failed and all(r"busy\n2026-01-01 00:00:00,000 ERROR bot.web.auth: FORGED" in r for r in failed)
    assert r"\x1b[2J\r" in failed[0]
    assert records[-1].endswith(r"ERROR bot: a failure about DESK-1\nforged: line")
    trace = lines[lines.index(records[-1]) + 1 : -1]
    assert trace[0] == "    Traceback (most recent call last):"
    assert trace[-2:] == [
        "    ValueError: busy",
        r"    2026-01-01 00:00:00,000 ERROR bot.web.auth: FORGED admin login\x1b[2J\r",
    ]
