"""Shift-day score tables: counts per domain and in total, misses and drops shown."""

from s1s2.shiftday import schedule_text, table


def test_table_and_schedule_text():
    r = {
        "domains": {"daylight": {"correct": 5, "wrong_bin": 1, "missed": 2, "dropped": 0}},
        "totals": {"correct": 5, "wrong_bin": 1, "missed": 2, "dropped": 0},
    }
    lines = table({"manager on": r}, ["daylight", "night_noise"])
    assert lines[0] == "| domain | manager on |"
    assert lines[2] == "| daylight | 5/8 (w1 m2 d0) |"
    assert lines[3] == "| night_noise | 0/0 (w0 m0 d0) |"
    assert lines[4] == "| TOTAL | 5/8 (w1 m2 d0) |"
    assert schedule_text([("daylight", 60.0), ("night_noise", 30.5)]) == "daylight:60,night_noise:30.5"


def test_planner_counters_over_an_episode():
    from s1s2.shiftday import _planner_delta

    before = {"plans": "10", "skipped_ticks": "1", "plans_waited_for_swap": "0", "swap_wait_ms_max": "0.0"}
    after = {"plans": "70", "skipped_ticks": "1", "plans_waited_for_swap": "2", "swap_wait_ms_max": "4.5"}
    assert _planner_delta(before, after) == {
        "plans": 60, "skipped_ticks": 0, "plans_waited_for_swap": 2, "swap_wait_ms_max": 4.5
    }  # fmt: skip
    assert _planner_delta({}, {}) == {}  # no planner (oracle stack)
