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


def test_failures_name_the_light_and_class_of_every_item_not_sorted_right():
    from types import SimpleNamespace as E

    from s1s2.shiftday import _failures, failures_by_class, failures_text

    events = [
        E(lighting_domain="daylight", class_label="can", outcome=0, item_id="i0"),
        E(lighting_domain="night_noise", class_label="glass_bottle", outcome=2, item_id="i1"),
        E(lighting_domain="night_noise", class_label="glass_bottle", outcome=2, item_id="i2"),
        E(lighting_domain="night_noise", class_label="can", outcome=1, item_id="i3"),
        E(lighting_domain="low_sun_glare", class_label="carton", outcome=3, item_id="i4"),
    ]
    f = _failures(events, seed=7)
    assert [x["item"] for x in f] == ["i1", "i2", "i3", "i4"]  # the correct one is not a failure
    assert f[0] == {
        "seed": 7,
        "domain": "night_noise",
        "class": "glass_bottle",
        "outcome": "missed",
        "item": "i1",
    }
    assert failures_by_class([{"failures": f}, {"failures": f[:1]}]) == {
        "night_noise": {"glass_bottle": {"missed": 3}, "can": {"wrong_bin": 1}},
        "low_sun_glare": {"carton": {"dropped": 1}},
    }
    assert failures_text({"failures": f}) == (
        "night_noise: can w1, glass_bottle m2; low_sun_glare: carton d1"
    )
    assert failures_text({"failures": []}) == "none"
