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
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot import tracing
from bot.errors import BadRequestError
from bot.runs import intake
from bot.services import Services
from bot.web import jsonbody
from bot.web.auth import bound_to_loopback, is_loopback
from bot.web.current import services_of
from bot.web.edge import BODY
from integrations.jira.models import Delivery
from integrations.jira.settings import JiraSettings
from integrations.settings import SettingsError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)
blueprint = Blueprint("jira_webhook", __name__)
EXTENSION = "connbot.jira"
PATH, JSON = "/webhooks/jira", "application/json"
STATUS_LINES = {202: "202 Accepted", 200: "200 OK"}
STORE_FAILED = "connbot.store_failed"  # in the environ: why `SignedDeliveries` could not store the delivery
NOT_CONFIGURED = (
    "Jira webhooks are not configured: set CONNBOT_JIRA_WEBHOOK_SECRET (the webhook's secret) or "
    "CONNBOT_JIRA_WEBHOOK_TOKEN (and add ?token=... to the webhook URL); "
    "CONNBOT_JIRA_INSECURE_DEV=true accepts unsigned webhooks for development only"
)


def register(app: Flask, settings: JiraSettings, host: str) -> None:
    """Mount the receiver with the Jira settings the services were built with. `host`: CONNBOT_HOST.
    With a webhook secret, `SignedDeliveries` answers the common delivery before Flask, but when
    every request is traced (its span is Flask's). Register before `edge.install`, whose middleware
    must wrap it."""
    if settings.insecure_dev and not is_loopback(host):
        raise SettingsError(
            f"CONNBOT_JIRA_INSECURE_DEV=true accepts unsigned webhooks, so it is for a desk on loopback "
            f"only; CONNBOT_HOST is {host}: set CONNBOT_JIRA_WEBHOOK_SECRET instead"
        )
    app.extensions[EXTENSION] = settings
    app.register_blueprint(blueprint)
    if settings.webhook_secret is not None and not tracing.on():
        # Flask's documented way to add WSGI middleware; mypy sees a method being replaced.
        app.wsgi_app = SignedDeliveries(  # type: ignore[method-assign]
            app.wsgi_app, settings.webhook_secret.get_secret_value(), services_of(app)
        )


def _reject(status: int, message: str) -> tuple[Response, int]:
    log.warning("jira webhook rejected (%s) from %s: %s", status, request.remote_addr, message)
    return jsonify(error="Unauthorized" if status == 401 else "Service Unavailable", message=message), status


@functools.lru_cache(maxsize=4)
def _keyed(secret: str) -> hmac.HMAC:
    """An HMAC-SHA256 with the key set up, copied for each body (the key's setup was 5 % of a webhook)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def signed(secret: str, signature: str, body: bytes) -> bool:
    """Whether `signature` (an X-Hub-Signature) is the body's, signed with `secret`."""
    mac = _keyed(secret).copy()
    mac.update(body)
    return hmac.compare_digest(signature.strip().lower().encode(), f"sha256={mac.hexdigest()}".encode())


def authenticate(settings: JiraSettings, body: bytes) -> tuple[int, str] | None:
    """None if the delivery is authentic, else (status, reason)."""
    signature = request.headers.get("X-Hub-Signature")
    if settings.webhook_secret is not None and signature is not None:
        if signed(settings.webhook_secret.get_secret_value(), signature, body):
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


def parse_plain(body: bytes) -> tuple[Delivery, str] | None:
    """What intake reads of a body that needs no more checks (`jsonbody.plain`), read by pydantic's
    own JSON parser (`Delivery`), and the body as text; None for any other body, or one that parser
    refuses: `parse` names the problem."""
    try:
        text = body.decode()
        if jsonbody.plain(text):
            return Delivery.model_validate_json(text), text
    except (UnicodeDecodeError, ValidationError):
        pass
    return None


def parse(body: bytes) -> tuple[Delivery, str]:
    """What intake reads of the body (`Delivery`) and the body as text, or BadRequestError saying
    what is wrong. The rest of the payload is the worker's to read: one that does not fit is stored
    and quarantined, not refused."""
    plain = parse_plain(body)
    if plain is not None:
        return plain
    data = jsonbody.loads(body)
    if not isinstance(data, dict):
        raise BadRequestError("body must be a JSON object (a Jira webhook payload)")
    try:
        return Delivery.model_validate(data), body.decode()
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise BadRequestError("not a Jira webhook payload: " + "; ".join(problems)) from None


def store(svc: Services, payload: Delivery, text: str, given_id: str) -> tuple[int, bytes]:
    """Store the delivery (`text`, as it came) once, by Jira's delivery identifier `given_id` (stable
    across retries) or, without one, a hash of event, issue and timestamp. Returns the answer: 202
    and `{"event": id, "status": "accepted"}`, or 200 and `"duplicate"` for a delivery stored
    already. Raises SQLAlchemy's errors."""
    delivery = given_id.strip()[:255]
    if not delivery:
        seed = f"{payload.webhook_event}|{payload.issue.key}|{payload.timestamp}"
        delivery = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    event_id, new = intake.record(
        svc.store, "jira", delivery, payload.webhook_event, payload.issue.key, text, svc.queue.wake_event
    )
    if new:
        return 202, b'{"event":%d,"status":"accepted"}\n' % event_id
    return 200, b'{"event":%d,"status":"duplicate"}\n' % event_id


@blueprint.post(PATH)
def receive() -> ResponseReturnValue:
    """Every delivery `SignedDeliveries` does not answer itself."""
    settings: JiraSettings = current_app.extensions[EXTENSION]
    body = request.get_data(cache=False)  # one over CONNBOT_MAX_BODY_BYTES never gets here (413)
    failure = authenticate(settings, body)
    if failure is not None:
        return _reject(*failure)
    payload, text = parse(body)
    try:
        failed = request.environ.get(STORE_FAILED)
        if failed is not None:  # `SignedDeliveries` tried: its error is answered here, not tried again
            raise failed
        status, answer = store(
            services_of(current_app), payload, text, request.headers.get("X-Atlassian-Webhook-Identifier", "")
        )
    except SQLAlchemyError:
        log.exception("jira webhook for %s could not be stored", payload.issue.key)
        return jsonify(
            error="Service Unavailable", message="the event could not be stored; Jira will retry"
        ), 503
    return Response(answer, status, mimetype=JSON)


class SignedDeliveries:
    """WSGI middleware between edge's and Flask: the common delivery, signed with the webhook secret,
    without a query string, its body read whole by `edge.BoundedBody` and one pydantic's parser
    reads (`parse_plain`), is stored and answered here, without Flask's handling of a request (a
    quarter of a receiver's time: bench/RESULTS.md). Any other request, a delivery whose signature
    does not match or whose store fails included, goes on to the app, whose view (`receive`)
    answers every case, the refusals logged and counted; a store that failed here is not tried
    again there (its error is handed on as `STORE_FAILED`), so a database that does not answer
    keeps Jira waiting once, not twice."""

    def __init__(self, app: WSGIApplication, secret: str, svc: Services):
        self.app, self.secret, self.svc = app, secret, svc

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body, signature = environ.get(BODY), environ.get("HTTP_X_HUB_SIGNATURE")
        if (
            body is not None
            and signature is not None
            and environ.get("PATH_INFO") == PATH
            and environ.get("REQUEST_METHOD") == "POST"
            and not environ.get("QUERY_STRING")
            and signed(self.secret, signature, body)
            and (plain := parse_plain(body)) is not None
        ):
            try:
                status, answer = store(
                    self.svc, *plain, environ.get("HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER", "")
                )
            except Exception as exc:
                environ[STORE_FAILED] = exc  # the view answers it, logged and counted
            else:
                start_response(
                    STATUS_LINES[status], [("Content-Type", JSON), ("Content-Length", str(len(answer)))]
                )
                return [answer]
        return self.app(environ, start_response)
