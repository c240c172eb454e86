"""Slack interactivity: the bolt app behind `POST /slack/events` (and Socket Mode).

Every listener acknowledges in the request thread before any database or network I/O, so Slack
hears back in milliseconds; the work goes on after, in the channel's executor (bolt lazy
listeners). An answer is stored with `prompts.answer_prompt` (first answer wins) together with a record
of the delivery, so a retried delivery is seen once; the run is then enqueued and the runner
edits the message through its `prompt.settle` effect. Signatures are always verified with
`CONNBOT_SLACK_SIGNING_SECRET`, first by connbot (401 and one log line to a forged or stale
request) and again by bolt.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from flask import Blueprint, Flask, Response, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from slack_bolt import Ack, App
from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from sqlalchemy.exc import IntegrityError

from bot.errors import BadRequestError, NotFoundError
from bot.runs import notices, prompts
from bot.runs.prompts import Via
from bot.services import Services
from bot.state.models import Event, Prompt, PromptState
from bot.web import jsonbody
from bot.web.webhooks.slack_commands import COMMAND, SHORTCUT, Commands
from integrations.base import AdapterError
from integrations.slack import blocks
from integrations.slack.channel import INCIDENT_LEVEL, SlackChannel
from integrations.slack.client import quietly

log = logging.getLogger(__name__)
SOURCE = "slack"
MAX_AGE = 5 * 60  # seconds a signed request is good for (Slack's window)


def slack_channel(svc: Services) -> SlackChannel | None:
    return next((c for c in svc.channels if isinstance(c, SlackChannel)), None)


def acknowledge(ack: Ack) -> None:
    """The whole of what happens before Slack gets its answer: no database, no network."""
    ack()


class Interactions:
    """What happens after a click or a form submission has been acknowledged (bolt lazy listeners)."""

    def __init__(self, svc: Services, channel: SlackChannel):
        self.svc, self.channel = svc, channel

    def clicked(self, body: dict[str, Any]) -> None:
        action = body["actions"][0]
        user = body["user"]["id"]
        where = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        self.answer(
            action["value"],
            blocks.choice_of(action["action_id"]),
            None,
            user,
            f"action:{user}:{action['action_ts']}",
            where,
        )

    def detail(self, body: dict[str, Any]) -> None:
        # trigger_id expires 3 s after the click: open the form before anything slow.
        action, user = body["actions"][0], body["user"]["id"]
        try:
            view = prompts.view_of(self.svc.context, action["value"])
        except AdapterError:
            return self._tell(
                (body.get("channel") or {}).get("id"), user, "connbot does not know this question any more."
            )
        if view.state != PromptState.OPEN:
            return self._tell(
                (body.get("channel") or {}).get("id"),
                user,
                f"This question was already settled. {blocks.outcome_line(view)}",
            )
        quietly(self.channel.open_modal, body["trigger_id"], view)

    def submitted(self, body: dict[str, Any]) -> None:
        form, user = body["view"], body["user"]["id"]
        choice, text = blocks.submitted(form["state"]["values"])
        self.answer(
            form["private_metadata"],
            choice,
            text,
            user,
            f"view:{user}:{form['id']}:{form.get('hash', '')}",
            None,
        )

    def answer(
        self, prompt_id: str, choice: str, text: str | None, user: str, delivery: str, where: str | None
    ) -> None:
        """Store the answer if `user` may give it and the prompt is open; otherwise say why, ephemerally."""
        with self.svc.store.tx() as s:
            prompt = s.get(Prompt, prompt_id)
            if prompt is None:
                return self._tell(where, user, "connbot does not know this question any more.")
            level, kind, handed_to = prompt.level, prompt.kind, prompt.handed_to
            where = where or (prompt.channel_refs.get("slack") or {}).get("channel")
        # whom a person handed the question to may answer it, whatever its level
        allowed = user == handed_to or quietly(self.channel.may_answer, user, level, kind)
        note = None
        with self.svc.store.tx() as s:
            event = Event(
                source=SOURCE,
                delivery_id=delivery[:255],
                kind="answer",
                ticket_key="",
                payload={"prompt": prompt_id, "choice": choice, "user": user},
                processed_at=self.svc.context.clock(),
            )
            try:
                with s.begin_nested():
                    s.add(event)
                    s.flush()
            except IntegrityError:
                log.info("slack: delivery %s seen before; ignored", delivery)
                return None
            if not allowed:
                event.outcome = "refused"
                note = (
                    f"Sorry, you may not {'approve' if kind == 'approval' else 'answer'} "
                    f"level-{level} questions "
                    f"({self.channel.answerers_hint(level)} may). Nothing changed."
                )
            else:
                try:
                    result = prompts.answer_prompt(
                        self.svc.context, s, prompt_id, choice, text, user, Via.SLACK
                    )
                except (BadRequestError, NotFoundError) as exc:
                    event.outcome, note = f"rejected: {exc}", f"connbot could not take this answer: {exc}"
                else:
                    event.outcome = "answered" if result.won else f"too late: {result.prompt.state}"
                    if not result.won:
                        pb = self.svc.playbooks.of(result.prompt.run)
                        settled = blocks.outcome_line(prompts.view(result.prompt, self.svc.tickets, pb))
                        note = f"This question was already settled. {settled} Nothing changed."
            log.info("slack: %s on prompt %s by %s: %s", choice, prompt_id, user, event.outcome)
        if note:
            self._tell(where, user, note)
        return None

    def incident(self, body: dict[str, Any]) -> None:
        """A click on an incident message's action: taken if `user` may answer level 2's questions."""
        action, user = body["actions"][0], body["user"]["id"]
        where = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        what = blocks.incident_action(action["action_id"])
        with self.svc.store.tx() as s:
            event = Event(
                source=SOURCE,
                delivery_id=f"action:{user}:{action['action_ts']}"[:255],
                kind="incident",
                payload={"incident": action["value"], "action": what, "user": user},
                processed_at=self.svc.context.clock(),
            )
            try:
                with s.begin_nested():
                    s.add(event)
            except IntegrityError:
                log.info("slack: incident action %s seen before; ignored", event.delivery_id)
                return None
        if not quietly(self.channel.may_answer, user, INCIDENT_LEVEL, "question"):
            note = (
                f"Sorry, you may not act on incidents ({self.channel.answerers_hint(INCIDENT_LEVEL)} may). "
                "Nothing changed."
            )
        else:
            try:
                note = notices.act(self.svc.context, int(action["value"]), what, user, Via.SLACK)
            except (notices.IncidentActionError, ValueError) as exc:
                note = f"connbot could not do this: {exc}"
            else:
                notices.show(self.svc.context, int(action["value"]))
        log.info("slack: incident %s %s by %s: %s", action["value"], what, user, note)
        self._tell(where, user, note)
        return None

    def _tell(self, where: str | None, user: str, text: str) -> None:
        if where:
            quietly(self.channel.ephemeral, where, user, text)


def bolt_app(svc: Services, channel: SlackChannel) -> App:
    """The bolt app: its listeners and signature verification (always on for HTTP)."""
    settings = channel.settings
    assert settings.bot_token is not None and settings.signing_secret is not None
    token = settings.bot_token.get_secret_value()

    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        # A single workspace and a known token: no auth.test call before the ack.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    # bolt's own client stays tokenless (authorize hands it the token); listeners use the channel's.
    app = App(
        signing_secret=settings.signing_secret.get_secret_value(),
        client=WebClient(base_url=settings.api_url),
        authorize=authorize,
        # With lazy listeners, this acks in the request thread and leaves the work to the executor.
        request_verification_enabled=True,
        process_before_response=True,
        listener_executor=channel.executor,
        logger=logging.getLogger("connbot.slack.bolt"),
    )
    handlers = Interactions(svc, channel)
    app.action(re.compile("^" + re.escape(blocks.ANSWER)))(ack=acknowledge, lazy=[handlers.clicked])
    app.action(blocks.DETAIL)(ack=acknowledge, lazy=[handlers.detail])
    app.action(re.compile("^" + re.escape(blocks.INCIDENT)))(ack=acknowledge, lazy=[handlers.incident])
    app.view(blocks.MODAL)(ack=acknowledge, lazy=[handlers.submitted])
    chat = Commands(svc, channel)
    app.command(COMMAND)(ack=acknowledge, lazy=[chat.command])
    app.event("app_home_opened")(ack=acknowledge, lazy=[chat.home])
    app.shortcut(SHORTCUT)(ack=acknowledge, lazy=[chat.shortcut])
    return app


def readable(raw: bytes, content_type: str | None) -> None:
    """Refuse, with a 400 naming the problem, a body bolt would misread or its parser crash on: one
    that is not UTF-8 (bolt reads it with the bad bytes replaced, and then finds its signature
    wrong), bad or too deeply nested JSON. bolt parses before it verifies, so this runs first and
    stores nothing either way."""
    body = jsonbody.decoded(raw)
    if body and (content_type == "application/json" or body.startswith("{")):
        data = jsonbody.loads(body)
    elif (
        "payload" in body
        and (payload := dict(parse_qsl(body, keep_blank_values=True)).get("payload")) is not None
    ):
        data = jsonbody.loads(payload, "payload")
    else:
        return
    if not isinstance(data, dict):
        raise BadRequestError("the payload must be a JSON object")


BOLT_ERRORS = {
    401: (
        "Unauthorized",
        "X-Slack-Signature does not verify with CONNBOT_SLACK_SIGNING_SECRET, or "
        "X-Slack-Request-Timestamp is missing or more than 5 minutes from now",
    ),
    404: (
        "Not Found",
        "connbot handles only its own prompts' buttons and forms, the /connbot command, its Home tab "
        "and its message shortcut; this request is none of them",
    ),
}


def explained(resp: Response) -> Response:
    """bolt's terse error bodies as connbot's JSON errors, which say what was wrong."""
    known = BOLT_ERRORS.get(resp.status_code)
    if known is None:
        return resp
    return make_response(jsonify(error=known[0], message=known[1]), resp.status_code)


def signed(secret: bytes, body: bytes) -> bool:
    """Whether the request carries Slack's signature of its raw `body` (`v0=` and the hex HMAC-SHA256
    of `v0:<timestamp>:<body>`), made at most 5 minutes ago. Computed here over the bytes: slack_sdk's
    verifier decodes the body first, so a signed body that is not UTF-8 would look forged."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not timestamp.isdigit() or len(timestamp) > 12 or abs(time.time() - int(timestamp)) > MAX_AGE:
        return False
    mac = hmac.new(secret, b"v0:%s:%s" % (timestamp.encode(), body), hashlib.sha256)
    given = request.headers.get("X-Slack-Signature", "").encode("utf-8", "replace")
    return hmac.compare_digest(f"v0={mac.hexdigest()}".encode(), given)


def init_app(app: Flask, svc: Services) -> None:
    """Mount `POST /slack/events` when Slack is one of the prompt channels."""
    channel = slack_channel(svc)
    if channel is None:
        return
    bolt = bolt_app(svc, channel)
    bp = Blueprint("slack", __name__)

    assert channel.settings.signing_secret is not None  # a Slack channel is only made with it
    secret = channel.settings.signing_secret.get_secret_value().encode()

    @bp.post("/slack/events")
    def events() -> ResponseReturnValue:
        # Verified here, before bolt: bolt logs the whole body of a request that fails (forged log
        # lines, terminal escapes, a MiB a request). A refusal is one line of our own, nothing of the
        # request in it but the peer's address.
        body = request.get_data()
        if not signed(secret, body):
            log.warning(
                "slack: request from %s refused (401): signature does not verify", request.remote_addr
            )
            return explained(make_response("", 401))
        readable(body, request.content_type)
        try:
            bolt_request = to_bolt_request(request)
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            # bolt reads ids out of the payload while building the request, before verifying it,
            # and trusts their shape: a payload with e.g. "user": false is no Slack request.
            raise BadRequestError(
                f"the payload does not have the shape of a Slack interaction ({type(exc).__name__})"
            ) from None
        return explained(to_flask_response(bolt.dispatch(bolt_request)))

    app.register_blueprint(bp)
