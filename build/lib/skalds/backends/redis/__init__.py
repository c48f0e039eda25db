"""Redis / Valkey adapters: the live state (node leases, task heartbeats with per-field TTL)."""

from skalds.backends.redis.live_state import RedisLiveState, RedisSettings

__all__ = ["RedisLiveState", "RedisSettings"]
