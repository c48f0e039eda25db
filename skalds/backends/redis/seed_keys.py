"""The original Skalds' Redis keys, kept up to date beside Skalds' own live state, so that
monitors and dashboards written for the original keep working (``backend.redis.seed_keys``).

Nodes (written with every lease renewal, inside the lease's own script: no extra round trip):

- ``<prefix>:hash`` field ``<node id>``: the renewal time, epoch ms (per-field TTL);
- ``<prefix>:mode:hash`` field ``<node id>``: ``node`` or ``edge`` (per-field TTL);
- ``<prefix>:<node id>:heartbeat``: a value 0..199 that changes with every renewal, ``EX 8``;
- ``<prefix>:<node id>:allow-task-class-name``: the list of the node's class names.

Tasks (written with the node's heartbeat batch, in the same MULTI/EXEC):

- ``task:<task id>:heartbeat``: while the worker runs, a value 0..199 that changes with every
  heartbeat, ``EX 8``; when the task ends, ``200`` (finished), ``-1`` (failed) or ``-2``
  (cancelled), kept for the seed TTL.

With the default ``key_prefix`` (``skalds``) these are the original's names; the per-field and
list TTLs are the seed TTL (the original's ``REDIS_KEY_TTL``, 3600 s). A clean stop of a node
deletes its node keys. The keys are a courtesy: a failure to write them never fails a lease.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from skalds.core.records import NodeInfo
from skalds.core.task import TaskLifecycleStatus

#: The original's ``EX`` of a running heartbeat value, in seconds.
HEARTBEAT_EX_S = 8
#: The original's heartbeat values of a task that ended.
ENDED_VALUES = {
    TaskLifecycleStatus.FINISHED: "200",
    TaskLifecycleStatus.FAILED: "-1",
    TaskLifecycleStatus.CANCELLED: "-2",
}
#: Running values of a task ended this recently are not written: a heartbeat batch read just
#: before its worker exited must not replace the end's value.
_ENDED_GUARD_S = 10.0
#: Running heartbeat values stay within 0..199, as the original's did (200 means finished).
_RUNNING_VALUES = 200

# Appended to the lease claim script, run only when the claim succeeded and seed keys are on
# (KEYS[2..5] given). Every call is a pcall: a key of the wrong type written by someone else
# must not fail the lease. ARGV[6..]: now ms, heartbeat value, TTL ms, mode, class names.
CLAIM_SEED_PART = f"""
if #KEYS >= 5 then
  redis.pcall('HSET', KEYS[2], ARGV[1], ARGV[6])
  redis.pcall('HPEXPIRE', KEYS[2], ARGV[8], 'FIELDS', 1, ARGV[1])
  redis.pcall('HSET', KEYS[3], ARGV[1], ARGV[9])
  redis.pcall('HPEXPIRE', KEYS[3], ARGV[8], 'FIELDS', 1, ARGV[1])
  redis.pcall('SET', KEYS[4], ARGV[7], 'EX', {HEARTBEAT_EX_S})
  redis.pcall('DEL', KEYS[5])
  if #ARGV >= 10 then
    redis.pcall('RPUSH', KEYS[5], unpack(ARGV, 10))
    redis.pcall('PEXPIRE', KEYS[5], ARGV[8])
  end
end
"""

# Appended to the lease release script, run when the instance held the lease (KEYS[2..5]).
RELEASE_SEED_PART = """
    if #KEYS >= 5 then
      redis.pcall('HDEL', KEYS[2], ARGV[1])
      redis.pcall('HDEL', KEYS[3], ARGV[1])
      redis.pcall('DEL', KEYS[4], KEYS[5])
    end
"""


class SeedKeys:
    """Names and values of the original's keys for one key prefix. Thread-safe."""

    def __init__(self, prefix: str, ttl_s: float) -> None:
        self.prefix = prefix
        self.ttl_ms = max(1, math.ceil(ttl_s * 1000))
        self._node_beats = itertools.count()
        self._task_beats = itertools.count()
        self._ended: dict[str, float] = {}  # task id -> monotonic time its end was written
        #: Held while a heartbeat batch or an end is written, so that no batch read before a
        #: task ended lands after the end's value.
        self.lock = threading.Lock()

    def node_keys(self, node_id: str) -> list[str]:
        """KEYS[2..5] of the claim and release scripts."""
        p = self.prefix
        return [f"{p}:hash", f"{p}:mode:hash", f"{p}:{node_id}:heartbeat", f"{p}:{node_id}:allow-task-class-name"]

    def node_args(self, node: NodeInfo) -> list[str | int]:
        """ARGV[6..] of the claim script for ``node``."""
        beat = next(self._node_beats) % _RUNNING_VALUES
        return [int(time.time() * 1000), beat, self.ttl_ms, node.mode, *node.classes]

    @staticmethod
    def task_heartbeat(task_id: str) -> str:
        """The original's heartbeat key of a task."""
        return f"task:{task_id}:heartbeat"

    def put_running(self, pipe: Any, task_ids: Sequence[str]) -> None:
        """Queue a new running value for each task on ``pipe`` (call under :attr:`lock`)."""
        value = next(self._task_beats) % _RUNNING_VALUES
        recent = time.monotonic() - _ENDED_GUARD_S
        for task_id in task_ids:
            if self._ended.get(task_id, 0.0) < recent:
                pipe.set(self.task_heartbeat(task_id), value, ex=HEARTBEAT_EX_S)

    def put_ended(self, pipe: Any, ends: Mapping[str, TaskLifecycleStatus]) -> None:
        """Queue each task's end value on ``pipe`` (call under :attr:`lock`)."""
        now = time.monotonic()
        self._ended = {t: at for t, at in self._ended.items() if at >= now - _ENDED_GUARD_S}
        for task_id, status in ends.items():
            pipe.set(self.task_heartbeat(task_id), ENDED_VALUES[status], px=self.ttl_ms)
            self._ended[task_id] = now
