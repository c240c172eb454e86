"""Slack: prompts as interactive messages, answers through the bolt app in bot/web/webhooks/slack.py."""
