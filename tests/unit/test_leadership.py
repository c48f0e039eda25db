"""The controller lease: one leader at a time, a standby takes over, a stalled leader fences
itself by its own clock before anyone else may lead."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from skalds.backends.local.live_state import MemoryLiveState
from skalds.controller.leadership import ROLE, Leadership, LeadSettings
from skalds.testing import wait_until

FAST = LeadSettings(ttl_s=0.6, renew_interval_s=0.1, margin_s=0.1)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[bool] = []

    def __call__(self, leading: bool) -> None:
        self.changes.append(leading)


def test_one_leads_the_other_stands_by_and_takes_over_when_it_stops() -> None:
    live = MemoryLiveState()
    a_seen, b_seen = Recorder(), Recorder()
    a = Leadership(live, "a", FAST, a_seen)
    b = Leadership(live, "b", FAST, b_seen)
    a.start()
    b.start()
    try:
        assert a.leading() and not b.leading()
        assert live.lead_holder(ROLE) == a.holder
        assert (a_seen.changes, b_seen.changes) == ([True], [False])
        time.sleep(3 * FAST.ttl_s)  # renewals keep it
        assert a.leading() and not b.leading()
        a.stop()  # hands the lease back: no wait for the TTL
        assert not a.leading() and a_seen.changes == [True, False]
        wait_until(b.leading, timeout_s=2 * FAST.renew_interval_s + 0.5, message="b leads")
        assert b_seen.changes == [False, True] and b.took_lead == 1
    finally:
        a.stop()
        b.stop()


class StallingLive(MemoryLiveState):
    """Live state whose lease writes hang while ``stall`` is set (a frozen process, a slow
    server): a renewal that started still has to return."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = threading.Event()
        self.released = threading.Event()

    def claim_lead(self, role: str, holder: str, ttl_s: float) -> str | None:
        if self.stall.is_set():
            self.released.wait()
        return super().claim_lead(role, holder, ttl_s)


def test_a_leader_whose_renewals_hang_stops_leading_before_its_lease_runs_out() -> None:
    live = StallingLive()
    a = Leadership(live, "a", FAST)
    a.start()
    try:
        assert a.leading()
        live.stall.set()
        stalled_at = time.monotonic()
        wait_until(lambda: not a.leading(), timeout_s=2, interval_s=0.01, message="a fenced itself")
        fenced_after = time.monotonic() - stalled_at
        assert fenced_after < FAST.ttl_s, "fenced before the server would let another controller lead"
        assert live.lead_holder(ROLE) == a.holder, "still its lease on the server: nobody else leads yet"
        live.stall.clear()
        live.released.set()  # the hung renewal returns: it renews and leads again
        wait_until(a.leading, timeout_s=2, message="a leads again")
    finally:
        live.released.set()
        a.stop()


def test_a_leader_that_finds_its_lease_taken_stands_by() -> None:
    live = MemoryLiveState()
    seen = Recorder()
    a = Leadership(live, "a", FAST, seen)
    a.start()
    try:
        live.release_lead(ROLE, a.holder)
        assert live.claim_lead(ROLE, "usurper", ttl_s=30) is None  # as if a's lease had run out
        wait_until(lambda: seen.changes == [True, False], timeout_s=2, message="a stands by")
        assert not a.leading()
    finally:
        a.stop()
    assert live.lead_holder(ROLE) == "usurper", "stopping does not drop another holder's lease"


def test_a_dispatcher_that_does_not_lead_drops_its_work_instead_of_spinning(tmp_path: Path) -> None:
    # A round refused while another controller leads must not leave the loop's wake-up
    # condition set: the loop would spin a core until the lead came back.
    from tests.conftest import make_system

    system = make_system(tmp_path / "data").start()
    try:
        dispatcher = system.dispatcher
        assert dispatcher is not None
        dispatcher.leading = lambda: False
        dispatcher.submit(["nobody"])
        dispatcher.wake()
        cpu = time.process_time()
        time.sleep(0.5)
        assert time.process_time() - cpu < 0.25, "the dispatch loop spun"
        assert not dispatcher._incoming and not dispatcher._dirty
    finally:
        system.stop()
