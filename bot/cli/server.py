"""Process entry points: the embedded server (web and worker in one process) and the worker."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from typing import Any

from gunicorn.app.base import BaseApplication

from bot import logs, tracing
from bot.lab import Lab
from bot.lab import web as lab_web
from bot.runs import jira_intake
from bot.runs.sweeper import sweep
from bot.services import Services
from bot.settings import Settings
from bot.state.queue import Sweeper
from bot.state.store import EventListener, Store
from bot.web.app import create_app
from integrations.base import Registry

log = logging.getLogger(__name__)
# Request threads of the web process (as the Procfile's `--threads`): a client that sends a request
# slowly holds one until CONNBOT_BODY_SECONDS, so there are enough for many such clients at once.
THREADS = 64


def _sweepers(services: Services) -> list[Sweeper | EventListener]:
    """The threads every worker runs beside its queue consumer: the stored events' taker (and, on
    PostgreSQL, the listener that wakes it), the sweeper and, with Jira configured, the backfill."""
    queue = services.queue
    sweepers: list[Sweeper | EventListener] = [
        queue.event_taker(),
        Sweeper(partial(sweep, services.context), services.settings.sweep_seconds),
    ]
    listener = services.store.event_listener(lambda event_id, note: queue.wake_event(event_id, note))
    if listener is not None:
        sweepers.append(listener)
    backfill = jira_intake.backfiller(services.context)
    if backfill is not None:  # ticks every sweep interval, searches Jira only when due
        sweepers.append(Sweeper(backfill.tick, services.settings.sweep_seconds, "jira backfill"))
    return sweepers


def _prepare(settings: Settings) -> None:
    if settings.embedded:
        Store(settings.sqlalchemy_url).upgrade()


class _Embedded(BaseApplication):
    """gunicorn with one threaded worker process that also runs the queue consumer and sweeper
    and, with `lab`, the lab's stand-ins."""

    def __init__(self, settings: Settings, lab: bool = False):
        self.settings = settings
        self.lab = lab
        self.background: list[Any] = []
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", THREADS)
        self.cfg.set("post_worker_init", self._start_background)
        self.cfg.set("worker_exit", self._stop_background)
        # gunicorn's own lines ("Starting gunicorn", "Booting worker") go through connbot's handler
        # like every other (one JSON object a line with CONNBOT_LOG_FORMAT=json).
        self.cfg.set(
            "logconfig_dict",
            {
                "root": {"level": self.settings.log_level, "handlers": ["connbot"]},
                "handlers": {"connbot": {"()": logs.handler, "fmt": self.settings.log_format}},
                "loggers": {"gunicorn.error": {"propagate": True}},
            },
        )

    def load(self) -> Any:
        lab = None
        environ: Mapping[str, str] = os.environ
        if self.lab:  # in the worker process; the services read the lab's directory and secrets
            lab = Lab(self.settings.data_dir).start()
            environ = {**os.environ, **lab.environment()}
            self.background.append(lab)
            log.warning(
                "connbot lab: a SIMULATION of %d scenarios (app backends at %s, PBX directory %s)",
                len(lab.scenarios),
                lab.app_url,
                lab.directory,
            )
        tracing.configure(self.settings.otel_endpoint, "connbot")  # here, in the forked worker process
        self.services = Services.build(self.settings, environ=environ)
        app = create_app(self.settings, self.services)
        if lab:
            lab_web.install(app, lab)
        return app

    def _start_background(self, _worker: Any) -> None:
        consumer = self.services.queue.consumer(self.settings.worker_threads, in_process=True)
        consumer.start()
        sweepers = _sweepers(self.services)
        for sweeper in sweepers:
            sweeper.start()
        self.background += [consumer, *sweepers]
        log.info(
            "connbot serving on http://%s:%s with an in-process worker",
            self.settings.host,
            self.settings.port,
        )

    def _stop_background(self, _server: Any, _worker: Any) -> None:
        for part in reversed(self.background):
            part.stop()


def serve(settings: Settings, lab: bool = False) -> None:
    """Web app and worker in one process; `lab` also runs the lab's stand-ins in it."""
    _prepare(settings)
    _Embedded(settings, lab).run()


def work(settings: Settings, registry: Registry | None = None) -> None:
    """Run a worker until SIGINT/SIGTERM. `registry` replaces the discovered adapters (tests)."""
    tracing.configure(settings.otel_endpoint, "connbot-worker")
    services = Services.build(settings, registry=registry)
    _prepare(settings)
    sweepers = _sweepers(services)
    for sweeper in sweepers:
        sweeper.start()
    try:
        services.queue.consumer(settings.worker_threads, in_process=False).run()
    finally:
        for sweeper in sweepers:
            sweeper.stop()
