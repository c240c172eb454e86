"""The composition root: everything a process needs, built once from the settings (store, queue,
playbook, adapters, ticket systems, prompt channels), and the `RunContext` the runs wing works with.
Web processes and workers build the same `Services`."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from bot.fleet.registry import Fleet, configured_directory
from bot.runs import intake, jira_intake, steps
from bot.runs.context import Handler, IncidentPolicy, Limits, RunContext, no_channel
from bot.runs.replies import Replies
from bot.runs.versions import Playbooks
from bot.settings import Settings
from bot.state.desk import DeskTickets
from bot.state.queue import Queue, Tasks
from bot.state.store import Store
from integrations import prompts, tickets
from integrations.base import Registry, discover, installed
from integrations.jira.settings import JiraSettings
from integrations.prompts import PromptChannel
from integrations.settings import Sections, SettingsError
from integrations.tickets import TicketSystem
from playbook.diagnosis import Rules, load_rules
from playbook.errors import PlaybookError


def diagnosis_rules(settings: Settings) -> Rules:
    """The diagnosis rules: the shipped ones, extended or replaced by CONNBOT_DIAGNOSIS_RULES. A team's
    file that is not usable is a bad setting, named with its variable."""
    try:
        return load_rules(settings.diagnosis_rules, settings.diagnosis_rules_replace)
    except PlaybookError as exc:
        if settings.diagnosis_rules is None:  # the shipped rules: a bug, not a setting
            raise
        raise SettingsError(
            f"CONNBOT_DIAGNOSIS_RULES ({exc.source}) is not usable: " + "; ".join(exc.problems)
        ) from None


def configured_ticket_systems(sections: Sections, fleet: Fleet | None) -> list[TicketSystem]:
    """The installed ticket systems (entry points `connbot.tickets`) whose settings configure them."""
    by_pbx = fleet.escalations() if fleet else {}
    found = (cls.configure(sections, by_pbx) for cls in installed(tickets.GROUP, TicketSystem, _source))
    return [system for system in found if system is not None]


def configured_channels(sections: Sections) -> list[PromptChannel]:
    """The installed prompt channels (entry points `connbot.channels`) whose settings configure them."""
    found = (cls.configure(sections) for cls in installed(prompts.GROUP, PromptChannel, _name))
    return [channel for channel in found if channel is not None]


def _source(cls: type[TicketSystem]) -> str:
    return cls.source


def _name(cls: type[PromptChannel]) -> str:
    return cls.name


def intake_handlers(jira: JiraSettings) -> dict[str, Handler]:
    """Handlers of stored inbound events, by source."""
    return {"jira": jira_intake.make_handler(jira)} if jira.configured or jira.receiving else {}


@dataclass
class Services:
    settings: Settings
    store: Store
    queue: Queue
    playbooks: Playbooks
    registry: Registry
    tickets: dict[str, TicketSystem]
    channels: Sequence[PromptChannel]
    jira: JiraSettings  # also read by the web's Jira webhook receiver
    sections: Sections  # every other section the web and the runs read, loaded once
    intake: dict[str, Handler] = field(default_factory=dict)
    fleet: Fleet | None = None
    replies: Replies = field(default_factory=Replies.load)

    def __post_init__(self) -> None:
        self.context = RunContext(
            store=self.store,
            waker=self.queue,
            playbooks=self.playbooks,
            registry_for=self.registry_for,
            tickets=self.tickets,
            channels=self.channels,
            limits=Limits(
                lease_seconds=self.settings.lease_seconds,
                sweep_seconds=self.settings.sweep_seconds,
                step_attempts=self.settings.step_attempts,
                effect_attempts=self.settings.effect_attempts,
            ),
            directory=self.fleet.directory if self.fleet else None,
            channel_for=self.fleet.slack_channel if self.fleet else no_channel,
            intake=self.intake,
            incidents=IncidentPolicy(
                enabled=self.settings.incidents,
                threshold=self.settings.incident_threshold,
                window=dt.timedelta(minutes=self.settings.incident_window_minutes),
                check=self.settings.incident_check_seconds,
                check_max=self.settings.incident_check_max_seconds,
                batch=self.settings.incident_batch,
                remind=self.settings.incident_remind_minutes * 60,
                health_every=self.settings.health_check_seconds,
            ),
            instances=self.instances,
            desk_url=self.settings.public_url.rstrip("/"),
            replies=self.replies,
        )
        self.queue.bind(
            Tasks(
                advance=partial(steps.advance, self.context),
                process=partial(intake.process, self.context),
                acknowledge=partial(intake.acknowledge, self.context),
                pending=partial(intake.pending, self.context),
            )
        )

    def instances(self) -> list[str]:
        """The PBX instances connbot checks: the directory's, or "" for the one PBX it is configured for."""
        if self.fleet:
            return [i.name for i in self.fleet.directory.instances]
        return [""] if self.registry.available("pbx.health") else []

    def registry_for(self, pbx: str | None) -> Registry:
        """The adapters a run uses: its PBX instance's when there is a directory, else the one registry."""
        return self.fleet.registry(pbx) if self.fleet else self.registry

    @classmethod
    def build(
        cls,
        settings: Settings,
        registry: Registry | None = None,
        channels: Sequence[PromptChannel] = (),
        tickets: Sequence[TicketSystem] = (),
        environ: Mapping[str, str] = os.environ,
    ) -> Services:
        """Services from settings; each integration's section is read here, once, from `environ` (the
        process's environment, or the lab's overlay on it). Tests pass fakes for the registry,
        channels and ticket systems."""
        sections = Sections(environ)
        directory = configured_directory(sections)
        fleet = Fleet.build(directory, discover(), sections) if directory else None
        store = Store(settings.sqlalchemy_url)
        registry = registry or (fleet.nowhere if fleet else Registry.configure(discover(), sections))
        rules = diagnosis_rules(settings)
        systems: dict[str, TicketSystem] = {"desk": DeskTickets(store)}
        systems.update({t.source: t for t in [*configured_ticket_systems(sections, fleet), *tickets]})
        jira = sections(JiraSettings)
        return cls(
            settings=settings,
            store=store,
            queue=Queue(settings.queue_target),
            playbooks=Playbooks(store, settings.playbook, registry.catalogue, rules),
            registry=registry,
            tickets=systems,
            channels=[*configured_channels(sections), *channels],
            jira=jira,
            sections=sections,
            intake=intake_handlers(jira),
            fleet=fleet,
            replies=Replies.load(settings.replies, settings.replies_language),
        )

    def close(self) -> None:
        self.store.dispose()
