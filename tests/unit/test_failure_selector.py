"""Which frames are the day's failures: low-confidence plans and frames before bad sorts."""

from adapter_manager.failures import FailureRecorderConfig, FailureSelector


def _sel(**kw):
    s = FailureSelector(FailureRecorderConfig(**kw))
    for k in range(100):  # 10 s of frames at 10 Hz
        s.add_frame(100.0 + k * 0.1, {"image": k})
    return s


def test_low_confidence_plans_keep_the_frame_they_answered():
    s = _sel(min_confidence=0.5)
    assert s.on_goal(105.0, 0.9, "goal", {}) == []
    got = s.on_goal(105.5, 0.2, "goal", {"plan_id": "p"})
    assert [(f.kind, f.frame.stamp, f.frame.payload["image"]) for f in got] == [
        ("low_confidence_plan", 105.5, 55)
    ]
    assert got[0].detail == {"plan_id": "p", "confidence": 0.2} and got[0].frame.goal == "goal"
    assert s.on_goal(105.5, 0.1, "goal", {}) == []  # kept once
    assert s.on_goal(42.0, 0.1, "goal", {}) == []  # a frame no longer (or never) buffered


def test_bad_sorts_keep_frames_spread_over_the_window_before_them():
    s = _sel(window_s=2.0, frames_per_sort=4)
    assert s.on_sort_event(108.0, 0, {}) == []  # correct
    got = s.on_sort_event(108.0, 2, {"item_id": "i"})
    stamps = [f.frame.stamp for f in got]
    assert [f.kind for f in got] == ["missed"] * 4 and len(set(stamps)) == 4
    assert all(106.0 <= t <= 108.0 for t in stamps) and max(stamps) >= 107.9
    assert s.counts == {"missed": 4}


def test_old_frames_leave_the_buffer():
    s = FailureSelector(FailureRecorderConfig(buffer_s=1.0))
    for k in range(50):
        s.add_frame(float(k) * 0.1, {})
    assert s.on_goal(0.5, 0.0, None, {}) == []
    assert len(s.on_goal(4.5, 0.0, None, {})) == 1
