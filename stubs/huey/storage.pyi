import sqlite3
from typing import Any

class BaseStorage:
    def __init__(self, name: str = "huey", **storage_kwargs: Any) -> None: ...

class BaseSqlStorage(BaseStorage): ...

class SqliteStorage(BaseSqlStorage):
    def __init__(
        self,
        name: str = "huey",
        filename: str = "huey.db",
        cache_mb: int = 8,
        fsync: bool | None = None,
        journal_mode: str = "wal",
        timeout: float = 5,
        strict_fifo: bool = False,
        create_tables: bool = True,
        **kwargs: Any,
    ) -> None: ...
    def _create_connection(self) -> sqlite3.Connection: ...

class RedisStorage(BaseStorage): ...
