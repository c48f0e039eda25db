"""The fault checker itself, on hand-made records: it must see what it is there to see."""

from __future__ import annotations

from tests.faults.observe import Copy, Sample, false_runs, overlap_s


def test_overlap_counts_only_the_time_two_copies_of_one_task_were_alive() -> None:
    copies = [
        Copy("a", 1, "n1", 10, start=0.0, end=5.0),
        Copy("a", 2, "n2", 11, start=3.0, end=9.0),  # 2 s with the first
        Copy("b", 1, "n1", 12, start=0.0, end=9.0),  # another task: no overlap
        Copy("a", 3, "n1", 13, start=8.5, end=None),  # 0.5 s with the second, open-ended
    ]
    assert overlap_s(copies, until=20.0) == 2.5


def test_a_false_state_is_either_a_claim_without_a_copy_or_a_copy_shown_otherwise() -> None:
    copies = [Copy("a", 1, "n1", 10, start=1.0, end=3.0)]
    shown = ["Running", "Running", "Running", "Running", "Running", "Created", "Assigning"]
    samples = [Sample(0.5 * i, {"a": (state, "n1")}) for i, state in enumerate(shown)]
    # t=0.0, 0.5: Running with no copy yet (false); 1.0..2.0 true; 2.5: shown Created while
    # the copy lives (false); 3.0: Assigning and no copy (true)
    runs = false_runs(copies, samples, {"a"}, interval_s=0.5)
    assert runs == [("a", 0.0, 1.0), ("a", 2.5, 3.0)]


def test_running_on_the_wrong_node_is_false_and_paused_without_an_executor_claims_nothing() -> None:
    copies = [Copy("a", 1, "n1", 10, start=0.0, end=None)]
    samples = [Sample(1.0, {"a": ("Running", "n2")}), Sample(2.0, {"a": ("Paused", "n1")})]
    assert false_runs(copies, samples, {"a"}, interval_s=1.0) == [("a", 1.0, 2.0)]
    idle = [Sample(1.0, {"b": ("Paused", None)}), Sample(2.0, {"b": ("Running", "n1")})]
    assert false_runs([], idle, {"b"}, interval_s=1.0) == [("b", 2.0, 3.0)]
