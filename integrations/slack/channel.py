"""Slack as a prompt channel: one message per prompt, edited when settled, reminders in its thread.

The core calls these through recorded effects; each call is idempotent for a prompt: `post` does
nothing once the prompt has a message (its channel and ts are kept in `prompt.channel_refs`),
`settle` rewrites the same message, `remind` replies in its thread.

Slack has no idempotency keys, so each message connbot posts carries message metadata naming its
prompt; when a post is repeated after an attempt whose answer was lost (a dropped connection, a
worker killed mid-call), the channel's history is searched for that message first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from integrations.base import PermanentError
from integrations.prompts import IncidentView, PromptChannel, PromptView
from integrations.settings import Sections
from integrations.slack import blocks
from integrations.slack.client import TIMEOUT, GroupMembers, make_client, translated
from integrations.slack.settings import SlackSettings, enabled

log = logging.getLogger(__name__)
PROMPT, REMINDER = "connbot_prompt", "connbot_reminder"
INCIDENT, INCIDENT_REMINDER = "connbot_incident", "connbot_incident_reminder"
# An incident's message is about level 2's people (the PBX's side), in their channel unless the
# PBX instance has its own.
INCIDENT_LEVEL = 2


class SlackChannel(PromptChannel):
    name = "slack"

    def __init__(
        self,
        settings: SlackSettings,
        executor: Executor | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        """`executor` runs the work that follows each acknowledged click (bolt's listener executor);
        `sleep` waits out a 429's Retry-After."""
        self.settings = settings
        self.executor = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="connbot-slack")
        self.client: WebClient = make_client(settings, sleep=sleep)
        # New messages are never re-sent after a dropped connection: the first may have landed.
        self.poster: WebClient = make_client(settings, may_repeat=False, sleep=sleep)
        self.members = GroupMembers(self.client, settings.group_cache_seconds)

    @classmethod
    def configure(cls, sections: Sections) -> SlackChannel | None:
        settings = enabled(sections(SlackSettings))
        return cls(settings) if settings else None

    @staticmethod
    def message_of(view: PromptView) -> tuple[str, str] | None:
        """The (channel, ts) of the prompt's Slack message, if it was posted."""
        refs = view.channel_refs.get("slack")
        if isinstance(refs, dict) and refs.get("ts") and refs.get("channel"):
            return str(refs["channel"]), str(refs["ts"])
        return None

    def post(self, view: PromptView) -> dict[str, object] | None:
        if self.message_of(view):
            return None
        channel = view.channel or self.settings.channel_for(view.level)
        text, body = blocks.prompt_message(view)
        where, _ = self._post_once(PROMPT, view.id, channel, text, body, view.repeat)
        return {"slack": where}

    def _post_once(
        self, kind: str, ref: str, channel: str, text: str, body: list[Any], repeat: bool
    ) -> tuple[dict[str, str], bool]:
        """Post a message carrying metadata (`kind`, `ref`), unless `repeat` and an earlier attempt's
        message is found: where it is (the channel's id, as Slack answers it, and ts), and whether it
        was found rather than posted."""
        if repeat and (ts := self.posted(kind, ref, channel)):
            return {"channel": channel, "ts": ts}, True
        with translated("chat.postMessage"):
            resp = self.poster.chat_postMessage(
                channel=channel, text=text, blocks=body, unfurl_links=False, metadata=self.metadata(kind, ref)
            )
        return {"channel": str(resp["channel"]), "ts": str(resp["ts"])}, False

    def settle(self, view: PromptView) -> None:
        where = self.message_of(view)
        if where is None:
            return
        text, body = blocks.settled_message(view)
        with translated("chat.update"):
            self.client.chat_update(channel=where[0], ts=where[1], text=text, blocks=body)

    def remind(self, view: PromptView) -> None:
        where = self.message_of(view)
        if where is None:
            return
        if view.repeat and self.posted(REMINDER, view.id, *where):
            return
        with translated("chat.postMessage"):
            self.poster.chat_postMessage(
                channel=where[0],
                thread_ts=where[1],
                metadata=self.metadata(REMINDER, view.id),
                text=blocks.reminder_text(view, self.settings.group_for(view.level)),
            )

    def show_incident(self, view: IncidentView) -> dict[str, object] | None:
        text, body = blocks.incident_message(view)
        where = view.message.get("slack")
        if isinstance(where, dict) and where.get("ts"):
            with translated("chat.update"):
                self.client.chat_update(channel=where["channel"], ts=where["ts"], text=text, blocks=body)
            return None
        channel = view.channel or self.settings.channel_for(INCIDENT_LEVEL)
        where, found = self._post_once(INCIDENT, f"incident-{view.id}", channel, text, body, view.repeat)
        if found:  # the earlier attempt's message shows an older state
            with translated("chat.update"):
                self.client.chat_update(channel=where["channel"], ts=where["ts"], text=text, blocks=body)
        return {"slack": where}

    def remind_incident(self, view: IncidentView) -> None:
        where = view.message.get("slack")
        if not isinstance(where, dict) or not where.get("ts"):
            return
        with translated("chat.postMessage"):
            self.poster.chat_postMessage(
                channel=where["channel"],
                thread_ts=where["ts"],
                metadata=self.metadata(INCIDENT_REMINDER, f"incident-{view.id}"),
                text=blocks.incident_reminder(view, self.settings.group_for(INCIDENT_LEVEL)),
            )

    @staticmethod
    def metadata(kind: str, prompt_id: str) -> dict[str, Any]:
        return {"event_type": kind, "event_payload": {"prompt_id": prompt_id}}

    def posted(self, kind: str, prompt_id: str, channel: str, thread: str | None = None) -> str | None:
        """The ts of a message of `kind` for the prompt among the channel's (or thread's) latest 200.
        Without the history scopes, or with a channel given by name, nothing is found (and it is said)."""
        try:
            with translated("conversations.history"):
                if thread:
                    resp = self.client.conversations_replies(
                        channel=channel, ts=thread, limit=200, include_all_metadata=True
                    )
                else:
                    resp = self.client.conversations_history(
                        channel=channel, limit=200, include_all_metadata=True
                    )
        except PermanentError as exc:
            log.warning(
                "slack: cannot look for an earlier post of prompt %s, posting again: %s", prompt_id, exc
            )
            return None
        for message in resp.get("messages") or ():
            if message.get("metadata") == self.metadata(kind, prompt_id):
                return str(message["ts"])
        return None

    def may_answer(self, user: str, level: int, kind: str) -> bool:
        """Whether a Slack user may answer a prompt of this level. With no one listed for a level,
        anyone in the channel may answer questions, but no one may approve account changes."""
        people, groups = self.settings.answerers_for(level), self.settings.answer_groups_for(level)
        if not people and not groups:
            return kind != "approval"
        return user in people or any(user in self.members(group) for group in groups)

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        with translated("chat.postEphemeral"):
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)

    def respond(self, response_url: str, text: str) -> None:
        """Answer a slash command or a shortcut, seen only by whoever used it (its response_url)."""
        with translated("response_url"):
            resp = WebhookClient(response_url, timeout=TIMEOUT).send(text=text, response_type="ephemeral")
        if resp.status_code >= 400:
            raise PermanentError(f"slack: response_url answered {resp.status_code}")

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        with translated("views.publish"):
            self.client.views_publish(user_id=user, view=view)

    def open_modal(self, trigger_id: str, view: PromptView) -> None:
        with translated("views.open"):
            self.client.views_open(trigger_id=trigger_id, view=blocks.detail_modal(view))

    def answerers_hint(self, level: int) -> str:
        """Who may answer, for a refusal note."""
        names = [f"<@{u}>" for u in sorted(self.settings.answerers_for(level))]
        names += [f"<!subteam^{g}>" for g in sorted(self.settings.answer_groups_for(level))]
        return ", ".join(names) or "nobody is configured for this level"
