"""The one way an add-on (the lab) extends the desk without the desk knowing it: a banner on every
page, extra fields in the filing form and what they change in a filed ticket, extra facts on a
ticket's page. The add-on installs one `DeskExtension` into the app; the desk's pages and the
JSON API only call it through this interface."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from markupsafe import Markup

KEY = "connbot.desk_extension"
# (the extra form values, the user named in the form) -> (the ticket's user, its fields);
# raises BadRequestError naming a bad value
Filing = Callable[[Mapping[str, str], str | None], tuple[str | None, dict[str, Any]]]


@dataclass(frozen=True)
class DeskExtension:
    banner: Markup  # shown at the top of every desk page
    form_template: str  # included in the filing form (its fields are named in `form_fields`)
    form_fields: tuple[str, ...]
    form_defaults: Mapping[str, str]  # the filing form's initial values
    user_hint: str  # the user field's placeholder
    file: Filing
    aside_template: str = ""  # included under the filing form
    ticket_facts: Callable[[Mapping[str, Any]], list[tuple[str, str]]] = lambda fields: []
    context: Mapping[str, Any] = field(default_factory=dict)  # what its templates read


def install(app: Flask, extension: DeskExtension) -> None:
    app.extensions[KEY] = extension


def of(app: Flask) -> DeskExtension | None:
    extension: DeskExtension | None = app.extensions.get(KEY)
    return extension
