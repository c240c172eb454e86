"""A Slack post whose answer is lost (the connection drops after Slack made it, or the worker dies
while waiting) is not posted again: the retry finds the message by its metadata."""

from __future__ import annotations

import datetime as dt

from bot.runs import intake, steps
from tests.fakes.adapters import scripted_registry


def prompt_posts(api, prompt_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """Messages posted in the channel (not in threads) whose buttons carry the prompt's id."""
    return [m for m in api.posts() if m["thread_ts"] is None and prompt_id in str(m["blocks"])]


def test_a_post_whose_answer_was_lost_is_found_not_repeated(make_slack) -> None:
    world = make_slack(scripted_registry({}, systems=()))
    world.api.lose_next("chat.postMessage")
    intake.file_desk_ticket(world.svc.context, "Bob can't connect", "", "bob@example.com", "1002")
    world.work()
    prompt = world.open_prompt()
    assert "slack" not in prompt.channel_refs, "the first attempt's answer was lost"
    world.now[0] += dt.timedelta(seconds=2)
    steps.advance(world.svc.context, prompt.run_id, "test")  # the retry the runner scheduled, when it is due
    posts = prompt_posts(world.api, prompt.id)
    assert len(posts) == 1, "one message for the prompt"
    assert world.open_prompt().channel_refs["slack"]["ts"] == posts[0]["ts"]
    world.answer(prompt.options[0][0])
    assert [u["ts"] for u in world.api.to("chat.update")] == [posts[0]["ts"]], "the one message is settled"
