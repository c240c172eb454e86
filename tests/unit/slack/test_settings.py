"""Slack is configured from CONNBOT_SLACK_*: off without a bot token, a clear error when half set."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bot.cli.main import main
from bot.web.app import create_app
from integrations.settings import SettingsError
from integrations.slack.settings import SlackSettings, load_slack
from tests.fakes.adapters import scripted_registry
from tests.fakes.slack_api import SIGNING_SECRET, click, form, signed


def test_slack_is_off_without_a_bot_token_and_has_no_endpoint(make_services):
    assert load_slack() is None
    svc = make_services(registry=scripted_registry({}, systems=()))
    assert svc.channels == []
    assert create_app(services=svc).test_client().post("/slack/events", data="x").status_code == 404


def test_half_configured_slack_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("CONNBOT_SLACK_BOT_TOKEN", "xoxb-secret-value")
    with pytest.raises(SettingsError) as err:
        load_slack()
    assert "CONNBOT_SLACK_SIGNING_SECRET" in str(err.value) and "CONNBOT_SLACK_CHANNEL" in str(err.value)
    assert "xoxb-secret-value" not in str(err.value)


def test_per_level_channels_groups_and_answerers():
    s = SlackSettings(
        bot_token="xoxb-1",
        signing_secret="s",
        channel="C1",
        channel_l2="C2",
        group_l2="S2",
        answerers_l1="W1, W2,",
        answer_groups_l2="S9",
    )
    assert (s.channel_for(1), s.channel_for(2), s.channel_for(3)) == ("C1", "C2", "C1")
    assert (s.group_for(1), s.group_for(2)) == ("", "S2")
    assert (
        s.answerers_for(1) == {"W1", "W2"}
        and s.answer_groups_for(2) == {"S9"}
        and s.answerers_for(2) == set()
    )
    assert (
        SlackSettings(bot_token="x", signing_secret="s", channel="C", api_url="http://gw/api").api_url
        == "http://gw/api/"
    )


def test_a_bad_api_url_is_named(monkeypatch):
    monkeypatch.setenv("CONNBOT_SLACK_API_URL", "slack.com/api")
    with pytest.raises(SettingsError, match="CONNBOT_SLACK_API_URL: expected an http"):
        load_slack()


def test_the_environment_wires_slack_in_and_posts_prompts_there(monkeypatch, make_services, slack_api):
    monkeypatch.setenv("CONNBOT_SLACK_BOT_TOKEN", "xoxb-env")
    monkeypatch.setenv("CONNBOT_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("CONNBOT_SLACK_CHANNEL", "C0ENV")
    monkeypatch.setenv("CONNBOT_SLACK_API_URL", slack_api.url)
    from bot.runs import intake

    svc = make_services(registry=scripted_registry({}, systems=()))
    assert [c.name for c in svc.channels] == ["slack"]
    web = create_app(services=svc).test_client()
    intake.file_desk_ticket(svc.context, "Carol can't connect", "", "carol@example.com", "1003")
    svc.queue.run_pending()
    assert [p["channel"] for p in slack_api.to("chat.postMessage")] == ["C0ENV"]
    body = form(click("nope", "connbot_answer:failed"))
    assert web.post("/slack/events", data=body, headers=signed(body, secret="wrong")).status_code == 401
    assert web.post("/slack/events", data=body, headers=signed(body)).status_code == 200
    svc.channels[0].executor.shutdown(wait=True)  # the after-ack work (a note that the prompt is unknown)
    assert "does not know this question" in slack_api.to("chat.postEphemeral")[0]["text"]


def test_socket_mode_command_says_what_it_needs():
    result = CliRunner().invoke(main, ["slack", "socket"])
    assert result.exit_code == 2 and "CONNBOT_SLACK_APP_TOKEN" in result.output
