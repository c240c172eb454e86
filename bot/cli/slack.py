"""`connbot slack socket`: Slack interactivity over Socket Mode."""

from __future__ import annotations

import logging

import click
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.cli.common import ConnbotGroup, _fail, _logging, _settings
from bot.services import Services
from bot.web.webhooks.slack import bolt_app, slack_channel

log = logging.getLogger(__name__)


@click.group("slack", cls=ConnbotGroup)
def cli() -> None:
    """Slack interactivity."""


@cli.command()
def socket() -> None:
    """Receive Slack clicks over Socket Mode (no public URL needed); run a worker beside it."""
    settings = _settings()
    _logging(settings)
    svc = Services.build(settings)
    channel = slack_channel(svc)
    if channel is None or channel.settings.app_token is None:
        _fail(
            "Socket Mode needs CONNBOT_SLACK_BOT_TOKEN, CONNBOT_SLACK_SIGNING_SECRET, CONNBOT_SLACK_CHANNEL "
            "and CONNBOT_SLACK_APP_TOKEN (an app-level token, xapp-...)",
            2,
        )
    log.info("connbot: Slack Socket Mode connecting")
    handler = SocketModeHandler(
        bolt_app(svc, channel), channel.settings.app_token.get_secret_value(), web_client=channel.client
    )
    handler.start()  # type: ignore[no-untyped-call]  # slack_bolt leaves start() unannotated
