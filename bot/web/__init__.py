"""The local web desk: tickets, prompts, live run views and the dashboard, served at `/`."""

from __future__ import annotations

from bot.web.pages import desk

__all__ = ["desk"]
