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
    after = {"plans": "70", "skipped_ticks": "1", "plans_waited_for_swap": "2", "swap_wait_ms_max": "4.5",
             "plans_withheld": "7"}  # fmt: skip
    assert _planner_delta(before, after) == {
        "plans": 60, "skipped_ticks": 0, "plans_waited_for_swap": 2, "swap_wait_ms_max": 4.5, "plans_withheld": 7
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


def test_item_trace_says_which_system_lost_each_item():
    """Each cause from what an observer sees: ground truth (belt frame = world - odometry) and
    goals (belt frame, within 5 cm names an item); holds and goals on other items are counted."""
    from s1s2.shiftday import ItemTrace

    tr = ItemTrace()
    belt = 1.0
    items = [  # id, class, x world, y, on belt, grasped
        ("a", "can", 1.30, 0.00, True, False),  # belt x 0.30
        ("b", "paper", 1.50, 0.10, True, False),  # belt x 0.50
        ("c", "glass", 1.70, -0.10, True, False),
        ("d", "can", 1.90, 0.05, True, False),
        ("e", "paper", 2.10, 0.00, True, False),
    ]
    tr.on_truth(0.0, belt, items)
    tr.on_truth(0.5, belt + 0.2, [(i, c, x + 0.2, y, o, g) for i, c, x, y, o, g in items])  # moved
    assert tr.on_goal(1.0, "", (0.0, 0.0), 0.0) == ""  # a hold names nothing
    assert tr.on_goal(2.0, "paper", (0.52, 0.12), 0.9) == "b"  # 2.8 cm from b
    assert tr.on_goal(2.5, "paper", (0.56, 0.10), 0.9) == "?"  # 6 cm: names nothing
    assert tr.on_goal(3.0, "can", (0.70, -0.10), 0.9, "night") == "c"  # c named as a can
    assert tr.on_goal(3.5, "can", (0.90, 0.05), 0.9) == "d"
    assert tr.on_goal(4.0, "paper", (1.10, 0.0), 0.9) == "e"
    # b and c are grasped (no longer on the belt); e is grasped later
    tr.on_truth(5.0, belt + 0.4, [("b", "paper", 0, 0, False, True), ("c", "glass", 0, 0, False, True)])
    tr.on_truth(6.0, belt + 0.5, [("e", "paper", 0, 0, False, True)])
    for item, t in (("a", 9.0), ("b", 7.0), ("c", 8.0), ("d", 9.0), ("e", 9.5)):
        tr.on_sort(t, item)
    a = tr.why("a", "missed")
    assert a["cause"] == "never named" and a["right"] == 0
    assert (a["holds"], a["other_items"], a["nowhere"]) == (1, 4, 1)  # 6 cm off: names nothing
    assert tr.why("b", "dropped")["cause"] == "lost after grasp"
    assert tr.why("b", "wrong_bin")["cause"] == "placed wrong"
    assert tr.why("c", "wrong_bin") | {} == {
        "cause": "wrong class", "right": 0, "other_class": 1, "holds": 1, "other_items": 3, "nowhere": 1,
        "named_as": ["can"], "named_with": ["night"], "seen_s": 0.0, "named_s": 3.0, "gone_s": 8.0,
    }  # fmt: skip
    assert tr.why("d", "missed")["cause"] == "named, not picked"
    assert tr.why("e", "wrong_bin")["cause"] == "placed wrong"
    assert tr.why("zz", "missed")["cause"] == "never named"  # never seen in the ground truth
    tr2 = ItemTrace()
    tr2.on_truth(0.0, 0.0, [("f", "can", 0.3, 0.0, True, False)])
    tr2.on_truth(1.0, 0.0, [("f", "can", 0.3, 0.0, False, True)])
    assert tr2.why("f", "wrong_bin")["cause"] == "picked unnamed"


def test_failures_carry_the_traced_cause_and_a_text_per_light():
    from types import SimpleNamespace as E

    from s1s2.shiftday import ItemTrace, _failures, causes_text, failures_by_cause

    tr = ItemTrace()
    tr.on_truth(0.0, 0.0, [("i1", "can", 0.3, 0.0, True, False)])
    tr.on_goal(1.0, "can", (0.3, 0.0), 0.9)
    events = [
        E(lighting_domain="night_noise", class_label="can", outcome=2, item_id="i1"),
        E(lighting_domain="night_noise", class_label="can", outcome=2, item_id="i2"),
        E(lighting_domain="daylight", class_label="can", outcome=0, item_id="i3"),
    ]
    f = _failures(events, 1, tr)
    assert [x["why"]["cause"] for x in f] == ["named, not picked", "never named"]
    assert failures_by_cause([{"failures": f}]) == {"night_noise": {"named, not picked": 1, "never named": 1}}
    assert causes_text({"failures": f}) == "night_noise: named, not picked 1, never named 1"
    assert causes_text({"failures": _failures(events, 1)}) == "none"  # untraced: no causes


def _rec(seed, **domains):
    """A run_shift_day record: domain=(correct, wrong_bin, missed, dropped)."""
    from s1s2.shiftday import OUTCOMES

    return {"seed": seed, "domains": {d: dict(zip(OUTCOMES, c, strict=True)) for d, c in domains.items()}}


def test_compare_pools_days_and_applies_the_managers_targets_only_where_the_base_drops():
    import pytest

    from s1s2.shiftday import compare, compare_table, pool

    on = [_rec(1, daylight=(5, 0, 0, 0), night=(4, 0, 1, 0), dim=(5, 0, 0, 0), glare=(3, 1, 1, 0)),
          _rec(2, daylight=(5, 0, 0, 0), night=(5, 0, 0, 0), dim=(4, 0, 0, 0), glare=(4, 0, 1, 0))]  # fmt: skip
    off = [_rec(1, daylight=(4, 0, 0, 0), night=(3, 1, 1, 0), dim=(4, 0, 1, 0), glare=(1, 0, 4, 0)),
           _rec(2, daylight=(6, 0, 0, 0), night=(2, 0, 3, 0), dim=(5, 0, 0, 0), glare=(2, 0, 3, 0))]  # fmt: skip
    assert pool(on)["night"] == {"correct": 9, "wrong_bin": 0, "missed": 1, "dropped": 0}
    rows = {r["domain"]: r for r in compare(on, off)}
    assert rows["daylight"]["gain"] == 0.0 and rows["daylight"]["off_drop"] is None
    n = rows["night"]  # ON 90 %, OFF 50 %: the base drops 50, ON gains 40, 10 under daylight
    assert (n["on_rate"], n["off_rate"], n["gain"], n["off_drop"], n["on_gap"]) == (
        90.0,
        50.0,
        40.0,
        -50.0,
        -10.0,
    )
    assert n["gain_met"] is True and n["within"] is False
    d = rows["dim"]  # the base drops 10: no 20-point gain to make
    assert d["off_drop"] == -10.0 and d["gain_met"] is None and d["within"] is True
    g = rows["glare"]  # ON 70 %, OFF 30 %
    assert round(g["gain"], 6) == 40.0 and g["gain_met"] is True and g["within"] is False
    tab = compare_table(list(rows.values()))
    # the interval resamples whole days, as pairs of the same seed: night gains +20 on day 1, +60
    # on day 2, +40 pooled, so the 95 % interval over days runs from +20 to +60
    assert n["gain_ci"] == pytest.approx((20.0, 60.0))
    assert tab[2] == "| daylight | 10/10 (100.0 %) | 10/10 (100.0 %) | +0.0 | +0.0 to +0.0 | - | - |"
    assert tab[3] == (
        "| night | 9/10 (90.0 %; 1 m) | 5/10 (50.0 %; 1 w, 4 m) | +40.0 | +20.0 to +60.0 | -50.0 | **-10.0** (no) |"
    )
    # a gain short of 20 where the base drops 20 or more is a missed target, and shown as such
    weak = compare(
        [_rec(1, daylight=(10, 0, 0, 0), night=(8, 0, 2, 0))],
        [_rec(1, daylight=(10, 0, 0, 0), night=(7, 0, 3, 0))],
    )
    assert weak[1]["off_drop"] == -30.0 and weak[1]["gain_met"] is False
    assert weak[1]["gain_ci"] is None  # one day: no interval over days
    assert "**+10.0**" in compare_table(weak)[3]


def test_shiftday_table_draws_its_rows_when_asked(tmp_path, capsys):
    import json

    from s1s2.shiftday import main

    on, off = tmp_path / "on.json", tmp_path / "off.json"
    on.write_text(json.dumps({"manager ON": _rec(7, daylight=(4, 0, 0, 0), night=(4, 0, 0, 0))}))
    off.write_text(json.dumps({"manager OFF": _rec(7, daylight=(4, 0, 0, 0), night=(2, 0, 2, 0))}))
    png = tmp_path / "figs" / "pooled.png"  # a folder that does not exist yet
    assert main(["table", "--on", str(on), "--off", str(off), "--plot", str(png)]) == 0
    assert f"plot: {png}" in capsys.readouterr().out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert main(["table", "--on", str(on), "--off", str(off)]) == 0  # no --plot, no figure
    assert "plot:" not in capsys.readouterr().out


def test_compare_refuses_runs_without_the_reference_light():
    import pytest

    from s1s2.shiftday import compare

    with pytest.raises(ValueError, match="'daylight'"):
        compare([_rec(1, night=(1, 0, 0, 0))], [_rec(1, daylight=(1, 0, 0, 0))])


def test_parse_seeds_and_its_errors():
    import pytest

    from s1s2.cli import parse_seeds

    assert parse_seeds("31-34") == [31, 32, 33, 34] and parse_seeds("3, 5-6") == [3, 5, 6]
    with pytest.raises(ValueError, match="'x1'"):
        parse_seeds("2,x1")
    with pytest.raises(ValueError, match="end before start"):
        parse_seeds("9-3")


def test_shiftday_table_command_reads_records_and_names_a_bad_file(tmp_path, capsys):
    import json

    import pytest

    from s1s2.shiftday import main

    on, off = tmp_path / "on.json", tmp_path / "off.json"
    on.write_text(json.dumps({"manager ON": _rec(7, daylight=(4, 0, 0, 0), night=(4, 0, 0, 0))}))
    off.write_text(json.dumps({"manager OFF": _rec(7, daylight=(4, 0, 0, 0), night=(2, 0, 2, 0))}))
    assert main(["table", "--on", str(on), "--off", str(off)]) == 0
    out = capsys.readouterr().out
    assert (
        "seeds 7" in out
        and "| night | 4/4 (100.0 %) | 2/4 (50.0 %; 2 m) | +50.0 | - | -50.0 | +0.0 (yes) |" in out
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit) as e:
        main(["table", "--on", str(bad), "--off", str(off)])
    assert e.value.code == 2 and str(bad) in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the OFF file has no ON record
        main(["table", "--on", str(off), "--off", str(off)])
    assert "no 'manager ON' record" in capsys.readouterr().err


def test_shiftday_run_refuses_bad_arguments_before_starting_a_stack(capsys):
    import pytest

    from s1s2.shiftday import main

    for argv, msg in (
        (["--seeds", "4-x"], "'4-x'"),
        (["--seeds", "4", "--out", "r/{day}.json"], "{run} and {seed}"),
        (["--seeds", "4", "--domain-s", "0"], "--domain-s 0"),
    ):
        with pytest.raises(SystemExit) as e:
            main(["run", *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err


def test_old_records_move_each_missed_item_to_the_light_it_passed_the_arm_in(tmp_path, capsys):
    """Before the cell scored items under the light they were presented in, a missed item counted
    for the light it fell off the belt in, ~10 s after passing the arm. `reattribute` moves it back
    by its trace (spawned + the spawner-to-arm travel); items that reached a bin keep their light."""
    import json

    from conveyor_sim.items import spawn_x
    from s1s2.cell import DEFAULT_CELL
    from s1s2.shiftday import ATTRIBUTION, main, reattribute

    belt = DEFAULT_CELL.belt
    to_arm = (DEFAULT_CELL.arm.base[0] - spawn_x(belt)) / belt.speed  # 8.8 s in the default cell
    counts = {"correct": 0, "wrong_bin": 0, "missed": 0, "dropped": 0}

    def fail(domain, outcome, seen):
        return {"domain": domain, "outcome": outcome, "why": {"seen_s": seen}}

    old = {
        "seed": 3,
        "schedule": [["daylight", 60.0], ["night_noise", 60.0]],
        "domains": {"daylight": {**counts, "correct": 5},
                    "night_noise": {**counts, "correct": 4, "missed": 2, "wrong_bin": 1}},
        "failures": [
            fail("night_noise", "missed", 60.0 - to_arm - 1.0),  # passed the arm a second before the change
            fail("night_noise", "missed", 60.0 - to_arm + 1.0),  # a second after: stays
            fail("night_noise", "wrong_bin", 50.0),  # scored at the drop: keeps its light
        ],
    }  # fmt: skip
    new, moved = reattribute(old)
    assert moved == 1 and new["failures"][0]["domain"] == "daylight"
    assert new["domains"]["daylight"] == {**counts, "correct": 5, "missed": 1}
    assert new["domains"]["night_noise"] == {**counts, "correct": 4, "missed": 1, "wrong_bin": 1}
    assert old["domains"]["night_noise"]["missed"] == 2  # the record read is not changed
    current = {**old, "attribution": ATTRIBUTION}
    assert reattribute(current) == (current, 0)

    on, off = tmp_path / "on.json", tmp_path / "off.json"
    on.write_text(json.dumps({"manager ON": old}))
    off.write_text(json.dumps({"manager OFF": current}))
    assert main(["table", "--on", str(on), "--off", str(off)]) == 0
    out = capsys.readouterr().out
    assert "1 records made before" in out and "1 missed items moved" in out
    assert "| night_noise | 4/6 (66.7 %; 1 w, 1 m) | 4/7 (57.1 %; 1 w, 2 m) |" in out
