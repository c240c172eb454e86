"""Block Kit for connbot's App Home tab: the open questions a person may answer (or was handed) and
their team's runs under way, each linking to the desk. Pure functions of plain data, within Slack's
limits (a Home tab holds at most 100 blocks)."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.slack.blocks import Block, clip, escape, link, section

SHOWN = 20  # items of each list; the rest are counted


@dataclass(frozen=True)
class HomeItem:
    """One line: a ticket, what it waits for, and its run's page on the desk."""

    ticket_key: str
    text: str
    url: str


def _items(title: str, items: list[HomeItem], empty: str) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    if not items:
        return [*blocks, section(empty)]
    for item in items[:SHOWN]:
        blocks.append(section(f"*{link(item.url, item.ticket_key)}* {escape(clip(item.text, 500, '…'))}"))
    if len(items) > SHOWN:
        blocks.append(section(f"… and {len(items) - SHOWN} more on the desk."))
    return blocks


def home_view(questions: list[HomeItem], runs: list[HomeItem], desk_url: str) -> Block:
    """The Home tab: my open questions, then my team's runs under way, then where to see everything."""
    return {
        "type": "home",
        "blocks": [
            *_items("Your open questions", questions, "No question waits for you."),
            {"type": "divider"},
            *_items("Your team's runs under way", runs, "No run of your levels is under way."),
            {"type": "divider"},
            section(
                f"Everything is on the {link(desk_url, 'desk')}. In any channel: `/connbot status KEY`, "
                "`/connbot triage KEY`, `/connbot rerun KEY`, `/connbot cancel KEY`, `/connbot incidents`."
            ),
        ],
    }
