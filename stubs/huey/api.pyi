import datetime
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from huey.storage import BaseStorage

_P = ParamSpec("_P")
_R = TypeVar("_R")

class Task:
    def __init__(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        id: str | None = None,
        eta: datetime.datetime | None = None,
        retries: int | None = None,
        retry_delay: int | None = None,
        priority: int | None = None,
        expires: float | datetime.datetime | datetime.timedelta | None = None,
        on_complete: Task | None = None,
        on_error: Task | None = None,
        expires_resolved: datetime.datetime | None = None,
        timeout: float | None = None,
        chord_config: Any = None,
        retry_backoff: float | None = None,
    ) -> None: ...

class Result:
    def __init__(self, huey: Huey, task: Task) -> None: ...

class TaskWrapper(Generic[_P, _R]):
    def __init__(
        self,
        huey: Huey,
        func: Callable[_P, _R],
        context: bool = False,
        name: str | None = None,
        task_base: type[Task] | None = None,
        **settings: Any,
    ) -> None: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> Result | None: ...
    def schedule(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        eta: datetime.datetime | None = None,
        delay: float | datetime.timedelta | None = None,
        priority: int | None = None,
        retries: int | None = None,
        retry_delay: int | None = None,
        retry_backoff: float | None = None,
        expires: float | datetime.datetime | datetime.timedelta | None = None,
        timeout: float | None = None,
        id: str | None = None,
    ) -> Result | None: ...

class Huey:
    name: str
    storage: BaseStorage
    def __init__(
        self,
        name: str = "huey",
        results: bool = True,
        store_none: bool = False,
        utc: bool = True,
        immediate: bool = False,
        serializer: Any = None,
        compression: bool = False,
        use_zlib: bool = False,
        immediate_use_memory: bool = True,
        storage_class: type[BaseStorage] | None = None,
        store_intermediate_errors: bool = True,
        **storage_kwargs: Any,
    ) -> None: ...
    def task(
        self,
        retries: int = 0,
        retry_delay: int = 0,
        retry_backoff: float = 0,
        priority: int | None = None,
        context: bool = False,
        name: str | None = None,
        expires: float | datetime.datetime | datetime.timedelta | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[_P, _R]], TaskWrapper[_P, _R]]: ...
    def dequeue(self) -> Task | None: ...
    def execute(self, task: Task, timestamp: datetime.datetime | None = None) -> Any: ...
    def pending_count(self) -> int: ...
    def is_revoked(
        self, task: Any, timestamp: datetime.datetime | None = None, peek: bool = True
    ) -> bool: ...
    def delete(self, key: str) -> bool: ...
