"""A node's lease: claimed at start, renewed on a thread that does nothing else.

The lease is what tells the controller this node is alive. Renewing it behind anything else
(a store read, a sweep, a worker's stop grace) would let a slow store or a stubborn worker
cost a healthy node its lease and every task on it, so this thread only renews, and after
each renewal tells the self-fencing workers how long it holds: a worker that stops hearing
that stops itself before the lease can run out (see :mod:`skalds.worker.runtime`).

A node id is held by one process at a time: the claim is refused while another live process
holds it, and a renewal refused later (another process took the id over after this one was
frozen past its lease) ends this node's workers at once.

While renewals fail (the live state is away, or this node is cut off from it) a second thread
touches the node's mark in the task store instead. The monitor counts a node as lost only when
both its lease and its mark stood still for a TTL, so a node that still reaches the store keeps
its workers running through a live-state outage, and one that reaches neither stops them in
time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from skalds.config.schema import DEFAULTS
from skalds.core.records import NodeInfo
from skalds.errors import BackendUnavailable, OwnershipConflict
from skalds.ports.live_state import LiveState
from skalds.worker.protocol import LeaseValid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    """Lease timings, in seconds.

    Attributes:
        ttl_s: a lease not renewed for this long expires; the node's tasks may then move.
        renew_interval_s: how often the lease is renewed (well under ``ttl_s``).
        fence_margin_s: a self-fencing worker sets its stop flag this long before the lease
            it last heard of expires, and is gone before it does.
    """

    ttl_s: float = DEFAULTS.node.lease_ttl_s
    renew_interval_s: float = DEFAULTS.node.lease_renew_interval_s
    fence_margin_s: float = DEFAULTS.node.fence_margin_s

    def worker_lease(self, renewed_at: float) -> LeaseValid:
        """The deadlines a self-fencing worker keeps after a renewal begun at ``renewed_at``
        (monotonic): the lease lasts at least ``ttl_s`` from then."""
        expires = renewed_at + self.ttl_s
        return LeaseValid(
            stop_at=expires - self.fence_margin_s,
            terminate_at=expires - self.fence_margin_s / 2,
            exit_at=expires - min(0.2, self.fence_margin_s / 4),
        )


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LeaseKeeper:
    """Claims and renews one node's lease.

    Args:
        settings: the timings.
        live: the live state port.
        describe: builds the current lease record (called on the renewing thread).
        on_renewed: called after every renewal with the worker deadlines it allows.
        on_taken: called once if another process took the node id over; renewals stop.
    """

    def __init__(
        self,
        settings: LeaseSettings,
        live: LiveState,
        describe: Callable[[], NodeInfo],
        on_renewed: Callable[[LeaseValid], None],
        on_taken: Callable[[NodeInfo], None],
        touch: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.describe = describe
        self.on_renewed = on_renewed
        self.on_taken = on_taken
        self.touch = touch
        self._renewed_at: float | None = None
        self._confirmed_at: float | None = None
        self._stop = threading.Event()
        self._now = threading.Event()  # renew at once (e.g. the node started draining)
        self._failures = 0
        self._thread = threading.Thread(target=self._loop, name="skalds-lease", daemon=True)
        self._fallback = threading.Thread(target=self._fallback_loop, name="skalds-lease-fallback", daemon=True)

    def acquire(self) -> None:
        """Claim the lease, waiting up to one TTL for a previous holder's lease to run out.

        A holder on this host whose process is gone (a crash a moment ago) is taken over at
        once.

        Raises:
            OwnershipConflict: another live process holds the node id; nothing was written.
            BackendUnavailable: the live state cannot be reached.
        """
        deadline = time.monotonic() + self.settings.ttl_s + self.settings.renew_interval_s
        while True:
            started = time.monotonic()
            info = self.describe()
            holder = self.live.claim_node(info, self.settings.ttl_s)
            if holder is not None and holder.host == socket.gethostname() and not pid_alive(holder.pid):
                logger.info("node %s: previous holder (%s) is gone; taking its lease", info.id, holder.holder())
                holder = self.live.claim_node(info, self.settings.ttl_s, force=True)
            if holder is None:
                self._renewed_at = started
                return
            if time.monotonic() >= deadline:
                raise OwnershipConflict(
                    f"node.id {info.id!r} is in use by {holder.holder()} (a live lease renewed "
                    f"{max(0, info.heartbeat_at - holder.heartbeat_at) / 1000:.1f}s ago); "
                    "stop that process or start this one with another node.id",
                    node_id=info.id,
                    holder_pid=holder.pid,
                    holder_host=holder.host,
                )
            time.sleep(0.1)

    def start(self) -> None:
        """Start renewing (after :meth:`acquire`)."""
        self._thread.start()
        if self.touch is not None:
            self._fallback.start()

    def renew_now(self) -> None:
        """Renew at once, e.g. to publish a changed record."""
        self._now.set()

    def publish(self) -> None:
        """Renew on the caller's thread, so the changed record (the node became ready) is what
        readers see once this returns. A failure, or a holder that took the id over, is left
        to the renewal thread, which is asked to renew at once."""
        started = time.monotonic()
        try:
            holder = self.live.claim_node(self.describe(), self.settings.ttl_s)
        except BackendUnavailable:
            self.renew_now()
            return
        if holder is not None:
            self.renew_now()
            return
        self._renewed_at = max(self._renewed_at or 0.0, started)

    def current(self) -> LeaseValid | None:
        """The worker deadlines of the lease held now, or None if it may have lapsed (a worker
        started now would stop itself at once)."""
        renewed_at = max((t for t in (self._renewed_at, self._confirmed_at) if t is not None), default=None)
        if renewed_at is None:
            return None
        lease = self.settings.worker_lease(renewed_at)
        return lease if time.monotonic() < lease.stop_at else None

    def stop(self, remove: bool = True) -> None:
        """Stop renewing, and drop the lease at once when ``remove``."""
        self._stop.set()
        self._now.set()
        for thread in (self._thread, self._fallback):
            if thread.is_alive():
                thread.join(timeout=5)
        if remove:
            info = self.describe()
            try:
                self.live.remove_node(info.id, info.instance)
            except BackendUnavailable as exc:
                logger.warning("node %s: lease not removed (%s); it expires by itself", info.id, exc)

    def _loop(self) -> None:
        interval = self.settings.renew_interval_s
        next_at = time.monotonic() + interval
        while not self._stop.is_set():
            self._now.wait(max(0.0, next_at - time.monotonic()))
            self._now.clear()
            if self._stop.is_set():
                return
            started = time.monotonic()
            next_at = started + interval
            try:
                holder = self.live.claim_node(self.describe(), self.settings.ttl_s)
            except BackendUnavailable as exc:
                self._failures += 1
                if self._failures == 1 or self._failures % 20 == 0:
                    logger.warning("lease renewal failed (%d in a row): %s", self._failures, exc)
                continue
            except Exception:
                logger.exception("lease renewal failed unexpectedly")
                continue
            if holder is not None:
                logger.error("node id taken over by %s while this process could not renew; stopping", holder.holder())
                self.on_taken(holder)
                return
            if self._failures:
                logger.info("lease renewed again after %d failed attempt(s)", self._failures)
                self._failures = 0
            self._renewed_at = started
            self.on_renewed(self.settings.worker_lease(started))

    def _fallback_loop(self) -> None:
        """Touch the node's mark in the store while renewals lag behind."""
        interval = self.settings.renew_interval_s
        failures = 0
        while not self._stop.wait(interval):
            renewed_at = self._renewed_at or 0.0
            if time.monotonic() - renewed_at <= 1.5 * interval or self.touch is None:
                failures = 0
                continue
            started = time.monotonic()
            try:
                self.touch()
            except BackendUnavailable as exc:
                failures += 1
                if failures == 1:
                    logger.warning("lease fallback: the task store is unreachable too (%s); workers stop in time", exc)
                continue
            except Exception:
                logger.exception("lease fallback failed unexpectedly")
                continue
            if self._confirmed_at is None or started - self._confirmed_at > 5:
                logger.warning("lease not renewed in the live state; this node keeps its tasks through the task store")
            self._confirmed_at = started
            if started > renewed_at:
                self.on_renewed(self.settings.worker_lease(started))
