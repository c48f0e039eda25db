"""Which of several controllers places tasks and judges nodes: the holder of one lease.

Every controller serves the whole REST API: they share the task store, the bus and the live
state and keep nothing of their own, so a load balancer may send any request to any of them.
The work that must not be done twice (the monitor's judging of nodes and its sweeps, the
dispatcher's placement) is done by one of them at a time, the holder of the live state's
``controller`` lease. The others stand by, each trying to take the lease every renew interval;
when the leader stops cleanly it hands the lease back at once, and when it dies the lease runs
out after ``ttl_s``. The standby that takes it reads from the store what waits and places it.

A leader fences itself by its own clock: it counts as leader only until ``ttl_s - margin_s``
after the start of its last renewal that succeeded. That start precedes the server's write,
so the leader stops placing before the server lets anyone else take the lease, even when its
renewals hang or the whole process is frozen (SIGSTOP, a VM pause): when it runs again it
finds the lease gone or taken, and stands by. Placements are conditional writes on each
task's epoch besides, so two controllers never both place one task even if the fence were off.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from skalds.errors import BackendUnavailable
from skalds.ports.live_state import LiveState

logger = logging.getLogger(__name__)

#: The live state's name of the lease the leading controller holds.
ROLE = "controller"


@dataclass(frozen=True)
class LeadSettings:
    """Timings of the controller lease (``controller.lead_*``)."""

    ttl_s: float = 2.5
    renew_interval_s: float = 0.5
    margin_s: float = 0.25


class Leadership:
    """Holds, renews and hands back the controller lease for one controller process.

    ``on_change(True)`` runs on its thread when this controller takes the lead (before any
    placement of its own), ``on_change(False)`` when it loses it; :meth:`leading` is cheap
    and safe from any thread.
    """

    def __init__(
        self,
        live: LiveState,
        controller_id: str,
        settings: LeadSettings | None = None,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.live = live
        self.settings = settings or LeadSettings()
        #: Unique per process: a restarted controller of the same id is another holder.
        self.holder = f"{controller_id}/{uuid.uuid4().hex[:8]}"
        self.on_change = on_change
        self.took_lead = 0  # how many times this process took the lead
        self._valid_until = 0.0  # monotonic; leading only before this
        self._leading: bool | None = None  # what on_change was last told (None: nothing yet)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="skalds-lead", daemon=True)

    def leading(self) -> bool:
        """True while this controller holds the lease by its own clock."""
        return self._leading is True and time.monotonic() < self._valid_until

    def start(self) -> None:
        """Try for the lease once now (so a lone controller leads from its first moment), then
        keep trying or renewing on a thread of its own."""
        self._attempt()
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and hand the lease back, so a standby takes over without waiting
        for it to run out."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        was_leading = self._leading
        self._set(False, "it stops")
        if was_leading:
            try:
                self.live.release_lead(ROLE, self.holder)
            except BackendUnavailable as exc:
                logger.warning("controller lease not handed back (it runs out on its own): %s", exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.renew_interval_s):
            self._attempt()

    def _attempt(self) -> None:
        started = time.monotonic()
        try:
            holder = self.live.claim_lead(ROLE, self.holder, self.settings.ttl_s)
        except BackendUnavailable as exc:
            # Unknown who holds it: keep what is still valid by this clock, take nothing new.
            if self._leading:
                logger.warning("controller lease not renewed: %s", exc)
                if time.monotonic() >= self._valid_until:
                    self._set(False, "its lease ran out unrenewed")
            return
        if holder is None:
            self._valid_until = started + self.settings.ttl_s - self.settings.margin_s
            self._set(True, "it places tasks and judges nodes")
        else:
            self._set(False, f"{holder} leads")

    def _set(self, leading: bool, why: str) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        if leading:
            self.took_lead += 1
        logger.info("controller %s %s: %s", self.holder, "leads" if leading else "stands by", why)
        if self.on_change is not None:
            try:
                self.on_change(leading)
            except Exception:
                logger.exception("controller %s: taking or leaving the lead failed", self.holder)
