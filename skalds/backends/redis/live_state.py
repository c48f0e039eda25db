"""Redis / Valkey live state: node leases and task heartbeats as hash fields with their own TTL,
task output as one stream per task.

Two hashes per key prefix: ``<prefix>:nodes`` (field = node id) and ``<prefix>:heartbeats``
(field = task id), each value the record's JSON. Every field carries its own expiry
(``HPEXPIRE``), so one hash holds many leases that run out independently, and a whole cluster's
heartbeats are one ``HSET`` plus one ``HPEXPIRE`` in one round trip. Per-field TTL needs
Redis >= 7.4 or Valkey >= 9; the adapter checks that once, when it is built.

A task's output lines are the stream ``<prefix>:logs:<task id>`` (one entry per line, field
``j`` = the line's JSON), trimmed to about the lines to keep at each ``XADD`` and expiring as a
whole some time after the last one; the entry ids are the cursors readers resume from.

The lease of a role that one process of several holds at a time (the leading controller) is
the string ``<prefix>:lead:<role>``: its holder, with a millisecond TTL.

With ``seed_keys`` on (the default) it also keeps the original Skalds' keys up to date
(``skalds:hash``, ``task:{id}:heartbeat``, ...; see :mod:`skalds.backends.redis.seed_keys`) in
the same round trips, for monitors written for the original.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from skalds.backends.redis.seed_keys import CLAIM_SEED_PART, RELEASE_SEED_PART, SeedKeys
from skalds.core.records import Heartbeat, LogLine, NodeInfo
from skalds.core.task import TaskLifecycleStatus
from skalds.errors import BackendUnavailable, ConfigError
from skalds.ports.live_state import LiveState, check_ended

#: Retries of one call after a connection error or timeout, each on a fresh connection. This is
#: what makes the first call after a server restart succeed: the pooled socket is dead, the
#: retry reconnects. Every command here is idempotent (HSET of the same value, HPEXPIRE, HDEL,
#: reads), so a retry after a lost reply is harmless.
_RETRIES = 2
#: Backoff between those retries, in seconds.
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 0.5
#: Idle seconds after which a pooled connection is PINGed before use (catches half-open sockets).
_HEALTH_CHECK_INTERVAL_S = 30

#: Bound on one lease or read call: a hung server must not hold a node's lease renewal, the
#: monitor or an API read for the full ``socket_timeout_s`` (and its retries).
_FAST_TIMEOUT_S = 1.0

# Claim (create or renew) a node's lease unless another live instance holds it, atomically.
# KEYS[1] nodes hash; ARGV: node id, instance, record JSON, TTL ms, force ("1"/"0").
# Returns the holder's record when refused, nil when the lease is ours. With seed keys, KEYS[2..5]
# and ARGV[6..] are the original's node keys and their values (CLAIM_SEED_PART).
_CLAIM = (
    """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and ARGV[5] ~= '1' then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' and record['instance'] and record['instance'] ~= ''
     and record['instance'] ~= ARGV[2] then
    return current
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HPEXPIRE', KEYS[1], ARGV[4], 'FIELDS', 1, ARGV[1])
"""
    + CLAIM_SEED_PART
    + """
return false
"""
)

# Drop a node's lease if the given instance holds it. KEYS[1] nodes hash; ARGV: id, instance.
# With seed keys, KEYS[2..5] are the original's node keys, deleted with the lease.
_RELEASE = (
    """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, record = pcall(cjson.decode, current)
  if ok and type(record) == 'table' and record['instance'] == ARGV[2] then
    redis.call('HDEL', KEYS[1], ARGV[1])
"""
    + RELEASE_SEED_PART
    + """
  end
end
return 0
"""
)

# Claim (create or renew) the lease of a role unless another holder's is live, atomically.
# KEYS[1] the role's key; ARGV: holder, TTL ms. Returns the live holder when refused, nil when ours.
_LEAD = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then
  return current
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""

# Drop the lease of a role if the given holder has it. KEYS[1] the role's key; ARGV[1] holder.
_UNLEAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""

_NEEDS = "RedisLiveState needs Redis >= 7.4 or Valkey >= 9 (per-field hash TTL, HPEXPIRE)"


@dataclass(frozen=True)
class RedisSettings:
    """Where the Redis / Valkey server is and how to name the keys.

    Attributes:
        host: server host name or address.
        port: server TCP port.
        password: AUTH password, or None for none.
        db: logical database number.
        key_prefix: prefix of both hashes; distinct prefixes never see each other's entries.
        socket_timeout_s: bound on connecting and on each reply, in seconds.
        seed_keys: also keep the original Skalds' keys up to date (nodes' under
            ``key_prefix``, ``task:{id}:heartbeat``), for monitors written for the original.
        seed_key_ttl_s: how long the original's node entries and a task's end value live
            (its ``REDIS_KEY_TTL``), in seconds.
    """

    host: str = "localhost"
    port: int = 6379
    password: str | None = None
    db: int = 0
    key_prefix: str = "skalds"
    socket_timeout_s: float = 5.0
    seed_keys: bool = True
    seed_key_ttl_s: float = 3600.0


def _ttl_ms(ttl_s: float) -> int:
    # Round up so an entry never lives shorter than asked; HPEXPIRE 0 deletes the field at
    # once, which is what a TTL of zero (or less) means for the in-memory adapter too.
    return max(0, math.ceil(ttl_s * 1000))


def _hpexpire(key: str, ttl_ms: int, fields: list[str]) -> list[str | int]:
    # Spelled out rather than client.hpexpire(): redis-py < 5.1 has no such method.
    return ["HPEXPIRE", key, ttl_ms, "FIELDS", len(fields), *fields]


class RedisLiveState(LiveState):
    """Leases and heartbeats in a Redis >= 7.4 or Valkey >= 9 server.

    Thread-safe: one connection pool shared by all callers. Each call blocks for at most about
    ``(1 + 2 retries) * socket_timeout_s`` plus under a second of backoff, then raises
    :class:`~skalds.errors.BackendUnavailable`; the next call reconnects on its own, so one
    adapter object survives a server restart. Data written while the server was down is lost
    with the call that raised, as TTL'd facts should be: the next renewal puts it back.
    """

    def __init__(self, settings: RedisSettings) -> None:
        """Connect and check that the server supports per-field TTL.

        Raises:
            ConfigError: the server is older than Redis 7.4 / Valkey 9.
            BackendUnavailable: the server cannot be reached or refused the check.
        """
        self.settings = settings
        self._nodes_key = f"{settings.key_prefix}:nodes"
        self._beats_key = f"{settings.key_prefix}:heartbeats"
        self._seed = SeedKeys(settings.key_prefix, settings.seed_key_ttl_s) if settings.seed_keys else None
        self._client = redis.Redis(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            password=settings.password,
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.socket_timeout_s,
            retry=Retry(ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), _RETRIES),
            # Named explicitly: redis-py 5 ignores ``retry`` without it; 6+ retries these anyway.
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            health_check_interval=_HEALTH_CHECK_INTERVAL_S,
            decode_responses=True,
        )
        fast_timeout = min(_FAST_TIMEOUT_S, settings.socket_timeout_s)
        self._fast = redis.Redis(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            password=settings.password,
            socket_timeout=fast_timeout,
            socket_connect_timeout=fast_timeout,
            # One retry, only for a dead pooled connection (a server restarted): a timeout
            # means the server hangs, and waiting on it twice helps nobody.
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            retry_on_error=[redis.ConnectionError],
            decode_responses=True,
        )
        self._claim = self._fast.register_script(_CLAIM)
        self._release = self._fast.register_script(_RELEASE)
        self._lead = self._fast.register_script(_LEAD)
        self._unlead = self._fast.register_script(_UNLEAD)
        try:
            self._check_server()
        except (ConfigError, BackendUnavailable):
            self.close()
            raise

    @property
    def _where(self) -> str:
        return f"redis://{self.settings.host}:{self.settings.port}/{self.settings.db}"

    @contextmanager
    def _translated(self, operation: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise BackendUnavailable(f"{operation} at {self._where} failed: {exc}", backend="redis") from exc

    def _check_server(self) -> None:
        # Try the command itself on a field that cannot exist: it answers [-2] ("no such
        # field") and changes nothing, while an older server refuses it as unknown.
        # (COMMAND INFO of an unknown command answers nil, which redis-py fails to parse.)
        with self._translated("checking HPEXPIRE support"):
            try:
                self._client.execute_command(*_hpexpire(self._nodes_key, 1, ["\x00skalds-hpexpire-probe"]))
            except redis.ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                info = self._client.info("server")
                version = info.get("valkey_version") or info.get("redis_version", "unknown")
                raise ConfigError(
                    f"{_NEEDS}; the server at {self._where} is version {version}", key="backend.redis"
                ) from exc

    def _put(self, key: str, values: dict[Any, str], ttl_s: float) -> None:
        # MULTI/EXEC: one round trip, and no reader ever sees a field without its TTL (HSET
        # clears a field's TTL; the HPEXPIRE right after sets it again).
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(key, mapping=values)
        pipe.execute_command(*_hpexpire(key, _ttl_ms(ttl_s), list(values)))
        if self._seed is None:
            pipe.execute()
            return
        with self._seed.lock:
            self._seed.put_running(pipe, list(values))
            pipe.execute()

    def claim_node(self, node: NodeInfo, ttl_s: float, *, force: bool = False) -> NodeInfo | None:
        """Create or renew a node's lease (millisecond precision) unless another live
        instance holds it; one atomic script, bounded by about two seconds.

        Raises:
            BackendUnavailable: the server cannot be reached; the lease may not be renewed.
        """
        keys = [self._nodes_key]
        args: list[str | int] = [
            node.id,
            node.instance,
            json.dumps(node.to_dict()),
            _ttl_ms(ttl_s),
            "1" if force else "0",
        ]
        if self._seed is not None:
            keys += self._seed.node_keys(node.id)
            args += self._seed.node_args(node)
        with self._translated(f"claiming node {node.id!r}"):
            holder = self._claim(keys=keys, args=args)
        return NodeInfo.from_dict(json.loads(holder)) if holder else None

    def remove_node(self, node_id: str, instance: str) -> None:
        """Drop a node's lease at once if ``instance`` holds it. Idempotent.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        keys = [self._nodes_key, *(self._seed.node_keys(node_id) if self._seed is not None else [])]
        with self._translated(f"removing node {node_id!r}"):
            self._release(keys=keys, args=[node_id, instance])

    def nodes(self) -> list[NodeInfo]:
        """Every node whose lease has not expired (the server hides expired fields).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated("listing nodes"):
            raw = self._fast.hgetall(self._nodes_key)
        return [NodeInfo.from_dict(json.loads(value)) for value in raw.values()]

    def _lead_key(self, role: str) -> str:
        return f"{self.settings.key_prefix}:lead:{role}"

    def claim_lead(self, role: str, holder: str, ttl_s: float) -> str | None:
        """Create or renew the lease of ``role`` (a string key with a millisecond TTL) unless
        another holder's is live; one atomic script.

        Raises:
            BackendUnavailable: the server cannot be reached; the lease may not be renewed.
        """
        with self._translated(f"claiming the lead of {role!r}"):
            current = self._lead(keys=[self._lead_key(role)], args=[holder, max(1, _ttl_ms(ttl_s))])
        return str(current) if current else None

    def release_lead(self, role: str, holder: str) -> None:
        """Drop the lease of ``role`` if ``holder`` has it. Idempotent.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated(f"releasing the lead of {role!r}"):
            self._unlead(keys=[self._lead_key(role)], args=[holder])

    def lead_holder(self, role: str) -> str | None:
        """Who holds the lease of ``role`` now, if anyone.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        with self._translated(f"reading the lead of {role!r}"):
            current = self._fast.get(self._lead_key(role))
        return str(current) if current else None

    def put_heartbeats(self, beats: Sequence[Heartbeat], ttl_s: float) -> None:
        """Record many heartbeats in one round trip (HSET + HPEXPIRE in MULTI/EXEC); each
        expires after ``ttl_s`` seconds. A later beat of the same task replaces the earlier.

        Raises:
            BackendUnavailable: the server cannot be reached; none of the beats was written.
        """
        if not beats:
            return
        values = {beat.task_id: json.dumps(beat.to_dict()) for beat in beats}
        with self._translated(f"putting {len(values)} heartbeats"):
            self._put(self._beats_key, values, ttl_s)

    def heartbeats(self, task_ids: Iterable[str] | None = None) -> dict[str, Heartbeat]:
        """Unexpired heartbeats by task id: of the given tasks (one HMGET), or of all (HGETALL).

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        raw: dict[Any, Any]  # str keys and values (decode_responses), None for a missing field
        with self._translated("reading heartbeats"):
            if task_ids is None:
                raw = self._fast.hgetall(self._beats_key)
            else:
                ids = list(dict.fromkeys(task_ids))
                if not ids:
                    return {}
                raw = dict(zip(ids, self._fast.hmget(self._beats_key, ids), strict=True))
        beats = (Heartbeat.from_dict(json.loads(value)) for value in raw.values() if value is not None)
        return {beat.task_id: beat for beat in beats}

    def drop_heartbeats(self, task_ids: Iterable[str]) -> None:
        """Forget the heartbeats of tasks that ended. Idempotent.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        ids = list(task_ids)
        if not ids:
            return
        with self._translated(f"dropping {len(ids)} heartbeats"):
            self._client.hdel(self._beats_key, *ids)

    def _logs_key(self, task_id: str) -> str:
        return f"{self.settings.key_prefix}:logs:{task_id}"

    def append_logs(self, lines: Mapping[str, Sequence[LogLine]], keep: int, ttl_s: float) -> None:
        """Append many tasks' lines in one round trip (``XADD ... MAXLEN ~ keep`` per line, one
        ``PEXPIRE`` per task). A retry after a lost reply may store a line twice.

        Raises:
            BackendUnavailable: the server cannot be reached; some lines may be missing.
        """
        if not lines:
            return
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for task_id, new in lines.items():
            key = self._logs_key(task_id)
            for line in new:
                pipe.xadd(key, {"j": json.dumps(line.to_dict())}, maxlen=max(1, keep), approximate=True)
                count += 1
            pipe.pexpire(key, _ttl_ms(ttl_s))
        with self._translated(f"appending {count} output lines"):
            pipe.execute()

    def read_logs(self, task_id: str, *, after: str | None = None, limit: int = 200) -> list[tuple[str, LogLine]]:
        """A task's lines: ``XRANGE`` after the cursor, or ``XREVRANGE`` for the last ones.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        if limit <= 0:
            return []
        key = self._logs_key(task_id)
        entries: Any  # [(id, {"j": json})], str with decode_responses
        with self._translated(f"reading the output of task {task_id!r}"):
            if after is not None:
                entries = self._fast.xrange(key, min=f"({after}", max="+", count=limit) or []
            else:
                entries = list(reversed(self._fast.xrevrange(key, max="+", min="-", count=limit) or []))
        return [(str(entry_id), LogLine.from_dict(json.loads(fields["j"]))) for entry_id, fields in entries]

    def drop_logs(self, task_ids: Iterable[str]) -> None:
        """Forget the lines of these tasks. Idempotent.

        Raises:
            BackendUnavailable: the server cannot be reached.
        """
        keys = [self._logs_key(task_id) for task_id in task_ids]
        if keys:
            with self._translated(f"dropping the output of {len(keys)} task(s)"):
                self._client.delete(*keys)

    def tasks_ended(self, ends: Mapping[str, TaskLifecycleStatus]) -> None:
        """Forget the heartbeats of tasks that ended and, with seed keys, write each one's
        end value (200, -1 or -2) for the seed TTL; one round trip (MULTI/EXEC). Idempotent.

        Raises:
            ValueError: a state is not an end (nothing written).
            BackendUnavailable: the server cannot be reached.
        """
        check_ended(ends)
        if not ends:
            return
        with self._translated(f"recording the end of {len(ends)} task(s)"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hdel(self._beats_key, *ends)
            if self._seed is None:
                pipe.execute()
                return
            with self._seed.lock:
                self._seed.put_ended(pipe, ends)
                pipe.execute()

    def close(self) -> None:
        """Close the pooled connections. Idempotent."""
        self._client.close()
        self._fast.close()
