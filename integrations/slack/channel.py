"""Slack as a prompt channel: one message per prompt, edited when settled, reminders in its thread.

The core calls these through recorded effects; each call is idempotent for a prompt: `post` does
nothing once the prompt has a message (its channel and ts are kept in `prompt.channel_refs`),
`settle` rewrites the same message, `remind` replies in its thread.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor

from slack_sdk import WebClient

from bot.prompts import PromptChannel, PromptView
from integrations.slack import blocks
from integrations.slack.client import GroupMembers, make_client, translated
from integrations.slack.settings import SlackSettings


class SlackChannel(PromptChannel):
    name = "slack"

    def __init__(self, settings: SlackSettings, executor: Executor | None = None):
        """`executor` runs the work that follows each acknowledged click (bolt's listener executor)."""
        self.settings = settings
        self.executor = executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="connbot-slack")
        self.client: WebClient = make_client(settings)
        # New messages are never re-sent after a dropped connection: the first may have landed.
        self.poster: WebClient = make_client(settings, may_repeat=False)
        self.members = GroupMembers(self.client, settings.group_cache_seconds)

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
        with translated("chat.postMessage"):
            resp = self.poster.chat_postMessage(channel=channel, text=text, blocks=body, unfurl_links=False)
        return {"slack": {"channel": resp["channel"], "ts": resp["ts"]}}

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
        with translated("chat.postMessage"):
            self.poster.chat_postMessage(channel=where[0], thread_ts=where[1],
                                         text=blocks.reminder_text(view, self.settings.group_for(view.level)))

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

    def open_modal(self, trigger_id: str, view: PromptView) -> None:
        with translated("views.open"):
            self.client.views_open(trigger_id=trigger_id, view=blocks.detail_modal(view))

    def answerers_hint(self, level: int) -> str:
        """Who may answer, for a refusal note."""
        names = [f"<@{u}>" for u in sorted(self.settings.answerers_for(level))]
        names += [f"<!subteam^{g}>" for g in sorted(self.settings.answer_groups_for(level))]
        return ", ".join(names) or "nobody is configured for this level"
