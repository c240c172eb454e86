import datetime
import logging
from typing import Any

from huey.api import Huey

class BaseProcess:
    huey: Huey
    _logger: logging.Logger | logging.LoggerAdapter[Any]
    def __init__(self, huey: Huey, stop_flag: Any) -> None: ...
    def loop(self, now: datetime.datetime | None = None) -> None: ...

class Worker(BaseProcess):
    def __init__(
        self,
        huey: Huey,
        stop_flag: Any,
        default_delay: float,
        max_delay: float,
        backoff: float,
        max_tasks: int | None = None,
    ) -> None: ...

class Scheduler(BaseProcess):
    def __init__(self, huey: Huey, stop_flag: Any, interval: int, periodic: bool) -> None: ...

class Consumer:
    worker_class: type[Worker]
    huey: Huey
    def __init__(
        self,
        huey: Huey,
        workers: int = 1,
        periodic: bool = True,
        initial_delay: float = 0.1,
        backoff: float = 1.15,
        max_delay: float = 10.0,
        scheduler_interval: int = 1,
        worker_type: str = "thread",
        check_worker_health: bool = True,
        health_check_interval: int = 10,
        flush_locks: bool = False,
        extra_locks: str | None = None,
        max_tasks: int | None = None,
        shutdown_timeout: float | None = None,
        graceful_signal: str = "INT",
    ) -> None: ...
    def _create_worker(self) -> Worker: ...
    def _create_scheduler(self) -> Scheduler: ...
    def _set_signal_handlers(self) -> None: ...
    def start(self) -> None: ...
    def stop(self, graceful: bool = False) -> None: ...
    def run(self) -> None: ...
