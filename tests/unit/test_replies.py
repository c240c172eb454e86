"""Reply templates: the shipped English and Italian, a team's file replacing them language by
language, the reporter's language where known, and clear errors for a bad file."""

from __future__ import annotations

import pytest

from bot.runs.replies import Replies
from integrations.settings import SettingsError


def test_the_shipped_replies_are_in_english_and_italian_and_fall_back_to_the_default_language():
    replies = Replies.load()
    assert replies.text("incident_joined") == (
        "A server problem is affecting several users; we will update you here."
    )
    assert replies.text("incident_joined", "it_IT").startswith("Un problema del server")
    assert replies.text("incident_joined", "it-CH").startswith("Un problema del server")
    assert replies.text("incident_joined", "de_DE") == replies.text("incident_joined", None)
    assert all({"en", "it"} <= set(texts) for texts in replies.templates.values())


def test_a_teams_file_replaces_templates_by_language_and_adds_its_own(tmp_path):
    team = tmp_path / "replies.yaml"
    team.write_text(
        "escalated:\n  en: Our voice team has your request ($ticket).\n"
        "outage:\n  en: Calls are down for everyone.\n  it: Le chiamate non funzionano per nessuno.\n"
    )
    replies = Replies.load(team)
    assert (
        replies.text("escalated", "en_GB", ticket="HELP-12") == "Our voice team has your request (HELP-12)."
    )
    assert replies.text("escalated", "it").startswith("Abbiamo passato")  # the shipped Italian stays
    assert replies.text("outage", "it") == "Le chiamate non funzionano per nessuno."


@pytest.mark.parametrize(
    "text, says",
    [
        (
            "outage:\n  it: Le chiamate non funzionano.\n",
            "outage have no 'en' text (CONNBOT_REPLIES_LANGUAGE",
        ),
        ("outage: down\n", "outage: expected a mapping of language to text"),
        ("outage:\n  English: down\n", "outage: 'English' is not a language code"),
        ("outage:\n  en: ''\n", "outage.en: expected a text of 1 to 1000 characters"),
        ("- a list\n", "expected a mapping of template name to languages"),
        ("outage: [\n", "cannot be read"),
    ],
)
def test_a_bad_team_file_is_a_clear_error_naming_the_file_and_the_template(tmp_path, text, says):
    team = tmp_path / "replies.yaml"
    team.write_text(text)
    with pytest.raises(SettingsError) as err:
        Replies.load(team)
    assert says in str(err.value) and str(team) in str(err.value)


def test_an_unknown_template_names_the_known_ones():
    with pytest.raises(KeyError, match=r"no reply template 'nope' \(known: .*incident_joined"):
        Replies.load().text("nope")
