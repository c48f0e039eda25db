"""Seed path ``skalds.proxy.redis``: ``RedisKey``, ``RedisConfig`` and ``RedisProxy``.

``RedisProxy`` is a small client for users' scripts: the seed's method names over one
``redis.Redis`` (exposed as ``proxy.client`` for anything else). Unlike the seed, a failed call
raises :class:`~skalds.errors.BackendUnavailable` instead of returning None, and a Redis Cluster
is not detected.

``RedisKey`` names the keys the seed's processes wrote. Skalds keeps its own live state
elsewhere (``<backend.redis.key_prefix>:nodes`` and ``:heartbeats``, see
:mod:`skalds.backends.redis.live_state`) and, with ``backend.redis.seed_keys`` on, keeps the
node and task heartbeat keys up to date as well (:mod:`skalds.backends.redis.seed_keys`); the
others (``all-task``, ``exception``, ``has-error``) are here for scripts that still use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from skalds.errors import BackendUnavailable


class RedisKey:
    """The seed's key patterns (its newest ``skalds:`` prefix)."""

    SKALD_LIST_HASH = "skalds:hash"
    SKALD_MODE_LIST_HASH = "skalds:mode:hash"

    @staticmethod
    def skald_heartbeat(skald_id: str) -> str:
        """A Skald's heartbeat value (``EX 8`` in the seed)."""
        return f"skalds:{skald_id}:heartbeat"

    @staticmethod
    def skald_allow_task_class_name(skald_id: str) -> str:
        """The list of class names a Skald registered."""
        return f"skalds:{skald_id}:allow-task-class-name"

    @staticmethod
    def skald_all_task(skald_id: str) -> str:
        """A Skald's running tasks, as ``TaskWorkerSimpleMapList`` JSON."""
        return f"skalds:{skald_id}:all-task"

    @staticmethod
    def task_has_error(task_id: str) -> str:
        """A task's user-defined error flag."""
        return f"task:{task_id}:has-error"

    @staticmethod
    def task_heartbeat(task_id: str) -> str:
        """A task's heartbeat value (200 finished, -1 failed, -2 cancelled in the seed)."""
        return f"task:{task_id}:heartbeat"

    @staticmethod
    def task_exception(task_id: str) -> str:
        """The text of the exception that ended a task."""
        return f"task:{task_id}:exception"


class RedisConfig:
    """Where Redis is (the seed's constructor arguments)."""

    def __init__(self, host: str = "localhost", port: int = 6379, password: str = "") -> None:
        self.host = host
        self.port = port
        self.password = password


class RedisProxy:
    """A Redis client with the seed's methods. Values are written as given; reads of strings
    return bytes (``get_message``) and of hashes, lists and key names ``str``, as the seed's."""

    def __init__(self, redis_config: RedisConfig | None = None, is_block: bool = True, timeout_s: float = 5.0) -> None:
        """Make the client; with ``is_block`` check the server answers now.

        Raises:
            BackendUnavailable: ``is_block`` and the server does not answer within ``timeout_s``.
        """
        import redis

        self.config = redis_config or RedisConfig()
        self.host, self.port = self.config.host, self.config.port
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self.client: Any = redis.Redis(
            host=self.host,
            port=self.port,
            password=self.config.password or None,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        if is_block:
            with self._translated("ping"):
                self.client.ping()

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise BackendUnavailable(f"redis {operation} at {self.host}:{self.port} failed: {exc}") from exc

    def set_message(self, key: str, message: Any, expire: int = 0, ttl: int = 0) -> None:
        """``SET key message`` with ``EX expire`` (seconds) when > 0, then ``EXPIRE ttl`` when > 0."""
        with self._translated("set"):
            self.client.set(key, message, ex=expire if expire > 0 else None)
            if ttl > 0:
                self.client.expire(key, ttl)

    def get_message(self, key: str) -> bytes | None:
        """The string at ``key`` as bytes, or None."""
        with self._translated("get"):
            value: bytes | None = self.client.get(key)
            return value

    def delete_key(self, key: str) -> int:
        """Delete ``key``; the number of keys removed (0 or 1)."""
        with self._translated("delete"):
            return int(self.client.delete(key))

    def get_sub_keys(self, root_key: str) -> list[str]:
        """Every key that starts with ``root_key`` (by ``SCAN``, so the server is not blocked)."""
        with self._translated("scan"):
            return [key.decode() for key in self.client.scan_iter(match=f"{root_key}*")]

    def set_hash(self, key: str, field: str, value: Any, ttl: int = 0) -> None:
        """``HSET key field value``, and with ``ttl`` > 0 that field's own expiry (``HEXPIRE``,
        Redis >= 7.4 or Valkey >= 9)."""
        with self._translated("hset"):
            self.client.hset(key, field, value)
            if ttl > 0:
                self.client.execute_command("HEXPIRE", key, ttl, "FIELDS", 1, field)

    def get_hash(self, key: str, field: str) -> str | None:
        """One field of a hash, or None."""
        with self._translated("hget"):
            value = self.client.hget(key, field)
            return value.decode() if value is not None else None

    def get_all_hash(self, root_key: str) -> dict[str, str]:
        """Every field of a hash (empty if there is none)."""
        with self._translated("hgetall"):
            return {k.decode(): v.decode() for k, v in self.client.hgetall(root_key).items()}

    def delete_hash(self, key: str, field: str) -> None:
        """Remove one field of a hash."""
        with self._translated("hdel"):
            self.client.hdel(key, field)

    def push_list(self, key: str, value: Any, insert_head: bool = True, ttl: int = 0) -> None:
        """Add to a list, then ``EXPIRE ttl`` when > 0. As in the seed, ``insert_head=True``
        appends (``RPUSH``) and ``False`` prepends (``LPUSH``)."""
        with self._translated("push"):
            (self.client.rpush if insert_head else self.client.lpush)(key, value)
            if ttl > 0:
                self.client.expire(key, ttl)

    def get_list(self, key: str, start: int = 0, end: int = -1) -> list[str]:
        """``LRANGE key start end``."""
        with self._translated("lrange"):
            return [value.decode() for value in self.client.lrange(key, start, end)]

    def overwrite_list(self, key: str, values: list[str], ttl: int = 0) -> None:
        """Replace a list by ``values`` in one transaction, then ``EXPIRE ttl`` when > 0."""
        with self._translated("overwrite list"):
            pipe = self.client.pipeline()
            pipe.delete(key)
            if values:
                pipe.rpush(key, *values)
            if ttl > 0:
                pipe.expire(key, ttl)
            pipe.execute()

    def publish_message(self, channel: str, message: Any, ttl: int = 0) -> int:
        """Publish on a pub/sub channel; the number of subscribers that got it. ``ttl`` is
        accepted for the seed's scripts and ignored: a channel has no expiry."""
        with self._translated("publish"):
            return int(self.client.publish(channel, message))

    def get_subscribe(self, ignore_subscribe_messages: bool = True) -> Any:
        """A ``PubSub`` object of this client."""
        return self.client.pubsub(ignore_subscribe_messages=ignore_subscribe_messages)

    def flush_all(self) -> None:
        """``FLUSHALL``: delete every key of the server (as the seed's scripts did; never on a
        shared server)."""
        with self._translated("flushall"):
            self.client.flushall()

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
