"""`POST /webhooks/jira`: verify, parse, store once, answer. No business logic here.

Authentication: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with
`CONNBOT_JIRA_WEBHOOK_SECRET`; for Jira versions that cannot sign, `?token=` compared with
`CONNBOT_JIRA_WEBHOOK_TOKEN`. With neither configured, webhooks are refused unless
`CONNBOT_JIRA_INSECURE_DEV=true`, which only a process configured for and bound to loopback
accepts. Answers: 202 stored, 200 duplicate, 400 malformed, 401 not
authenticated, 413 too large, 503 not configured or the store failed (Jira then retries).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import BadRequestError
from bot.runs import intake
from bot.web import jsonbody
from bot.web.auth import bound_to_loopback, is_loopback
from bot.web.current import services_of
from integrations.jira.models import Delivery
from integrations.jira.settings import JiraSettings
from integrations.settings import SettingsError

log = logging.getLogger(__name__)
blueprint = Blueprint("jira_webhook", __name__)
EXTENSION = "connbot.jira"
NOT_CONFIGURED = (
    "Jira webhooks are not configured: set CONNBOT_JIRA_WEBHOOK_SECRET (the webhook's secret) or "
    "CONNBOT_JIRA_WEBHOOK_TOKEN (and add ?token=... to the webhook URL); "
    "CONNBOT_JIRA_INSECURE_DEV=true accepts unsigned webhooks for development only"
)


def register(app: Flask, settings: JiraSettings, host: str) -> None:
    """Mount the receiver with the Jira settings the services were built with. `host`: CONNBOT_HOST."""
    if settings.insecure_dev and not is_loopback(host):
        raise SettingsError(
            f"CONNBOT_JIRA_INSECURE_DEV=true accepts unsigned webhooks, so it is for a desk on loopback "
            f"only; CONNBOT_HOST is {host}: set CONNBOT_JIRA_WEBHOOK_SECRET instead"
        )
    app.extensions[EXTENSION] = settings
    app.register_blueprint(blueprint)


def _reject(status: int, message: str) -> tuple[Response, int]:
    log.warning("jira webhook rejected (%s) from %s: %s", status, request.remote_addr, message)
    return jsonify(error="Unauthorized" if status == 401 else "Service Unavailable", message=message), status


@functools.lru_cache(maxsize=4)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 with the key set up, copied for each body (the key's setup was 5 % of a webhook)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def authenticate(settings: JiraSettings, body: bytes) -> tuple[int, str] | None:
    """None if the delivery is authentic, else (status, reason)."""
    signature = request.headers.get("X-Hub-Signature")
    if settings.webhook_secret is not None and signature is not None:
        mac = _keyed(settings.webhook_secret.get_secret_value()).copy()
        mac.update(body)
        digest = mac.hexdigest()
        if hmac.compare_digest(signature.strip().lower().encode(), f"sha256={digest}".encode()):
            return None
        return 401, "X-Hub-Signature does not match the body signed with CONNBOT_JIRA_WEBHOOK_SECRET"
    token = request.args.get("token")  # the query is parsed only for a delivery not signed
    if settings.webhook_token is not None and token is not None:
        if hmac.compare_digest(token.encode(), settings.webhook_token.get_secret_value().encode()):
            return None
        return 401, "the ?token= in the webhook URL does not match CONNBOT_JIRA_WEBHOOK_TOKEN"
    if settings.webhook_secret is not None:
        return (
            401,
            "missing X-Hub-Signature header: give the Jira webhook the secret in CONNBOT_JIRA_WEBHOOK_SECRET",
        )
    if settings.webhook_token is not None:
        return 401, "missing ?token= in the webhook URL (CONNBOT_JIRA_WEBHOOK_TOKEN)"
    if settings.insecure_dev and bound_to_loopback():
        return None
    return 503, NOT_CONFIGURED


def parse(body: bytes) -> tuple[Delivery, str]:
    """What intake reads of the body (`Delivery`) and the body as text, or BadRequestError saying
    what is wrong. The rest of the payload is the worker's to read: one that does not fit is stored
    and quarantined, not refused. pydantic's own JSON parser reads a body that needs no more checks
    (`jsonbody.plain`); any other body, and one it refuses, is read by `jsonbody.loads`, which names
    the problem."""
    try:
        text = body.decode()
        if jsonbody.plain(text):
            return Delivery.model_validate_json(text), text
    except (UnicodeDecodeError, ValidationError):
        pass  # said below
    data = jsonbody.loads(body)
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object (a Jira webhook payload)")
    try:
        return Delivery.model_validate(data), body.decode()
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise BadRequestError("not a Jira webhook payload: " + "; ".join(problems)) from None


def delivery_id(payload: Delivery) -> str:
    """Jira's delivery identifier (stable across retries), else a hash of event, issue and timestamp."""
    given = request.headers.get("X-Atlassian-Webhook-Identifier", "").strip()
    if given:
        return given[:255]
    seed = f"{payload.webhook_event}|{payload.issue.key}|{payload.timestamp}"
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@blueprint.post("/webhooks/jira")
def receive() -> ResponseReturnValue:
    settings: JiraSettings = current_app.extensions[EXTENSION]
    body = request.get_data(cache=False)  # one over CONNBOT_MAX_BODY_BYTES never gets here (413)
    failure = authenticate(settings, body)
    if failure is not None:
        return _reject(*failure)
    payload, text = parse(body)
    svc = services_of(current_app)
    try:
        event_id, new = intake.record(
            svc.store,
            "jira",
            delivery_id(payload),
            payload.webhook_event,
            payload.issue.key,
            text,  # stored as it came
            svc.queue.wake_event,
        )
    except SQLAlchemyError:
        log.exception("jira webhook for %s could not be stored", payload.issue.key)
        return jsonify(
            error="Service Unavailable", message="the event could not be stored; Jira will retry"
        ), 503
    if not new:
        return jsonify(status="duplicate", event=event_id), 200
    return jsonify(status="accepted", event=event_id), 202
