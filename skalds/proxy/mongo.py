"""Seed path ``skalds.proxy.mongo``: ``MongoConfig`` and ``MongoProxy``."""

from __future__ import annotations

import os
from typing import Any


class MongoConfig:
    """Where MongoDB is: a connection string and the database name (the seed's arguments)."""

    def __init__(self, host: str = "mongodb://localhost:27017/", db_name: str | None = None) -> None:
        self.host = host.strip() if host and host.strip() else "mongodb://localhost:27017/"
        self.db_name = db_name or os.environ.get("DB_NAME", "skalds")


class MongoProxy:
    """A MongoDB client and database handle, as the seed's scripts use them (``proxy.db``)."""

    def __init__(self, mongo_config: MongoConfig | None = None) -> None:
        import pymongo

        self.config = mongo_config or MongoConfig()
        self.host, self.db_name = self.config.host, self.config.db_name
        self.client: Any = pymongo.MongoClient(self.host, serverSelectionTimeoutMS=5000)
        self.db: Any = self.client[self.db_name]

    def init_db_index(self, is_block: bool = True) -> None:
        """Create the task indexes (the task store does this too; kept for seed scripts)."""
        from skalds.backends.mongo import MongoSettings, MongoTaskStore

        MongoTaskStore(MongoSettings(uri=self.host, db_name=self.db_name)).close()

    def close(self) -> None:
        """Close the client."""
        self.client.close()
