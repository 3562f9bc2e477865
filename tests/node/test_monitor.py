"""The stack monitor tells a pause of System 1 from one of its own: it reads each joint command's
DDS source timestamp and publication number, not only the time the command arrived."""

import gc

import pytest
import rclpy
from std_msgs.msg import Float64MultiArray

from s1s2.monitor import MonitorThread, StackMonitor
from s1s2.topics import CONTROL_DT

pytestmark = pytest.mark.node

T0 = 1_000.0


@pytest.fixture
def monitor():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = StackMonitor(context=ctx)
    yield node
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)


def feed(mon, monkeypatch, stream):
    """stream: (receive time, send time, publication number) per command that arrived."""
    for rx, tx, seq in stream:
        monkeypatch.setattr(StackMonitor, "_now", staticmethod(lambda rx=rx: rx))
        info = {"source_timestamp": int(tx * 1e9), "publication_sequence_number": seq}
        mon._on_command(Float64MultiArray(data=[0.0] * 6), info)


def ticks(n, start=0, pause_at=None, pause_s=0.0):
    """n commands at 50 Hz from publication number start+1, the sender pausing before pause_at."""
    out, t = [], T0
    for k in range(n):
        if k == pause_at:
            t += pause_s
        out.append((t + 0.003, t, start + k + 1))
        t += CONTROL_DT
    return out


def test_a_steady_stream_is_fifty_hertz_with_nothing_lost(monitor, monkeypatch):
    feed(monitor, monkeypatch, ticks(500))
    c = monitor.command_stream(T0, T0 + 20)
    assert c["published"] == c["received"] == 500 and c["lost"] == 0 and c["one_publisher"]
    assert c["published_hz"] == pytest.approx(50.0, rel=1e-6)
    assert c["longest_pause_ms"] == pytest.approx(20.0, abs=1e-3)


def test_a_receiver_that_stalls_loses_commands_but_system_1_did_not_pause(monitor, monkeypatch):
    # this process sleeps 1 s: the depth-1 reader keeps only the newest of the commands sent meanwhile
    stream = ticks(500)
    stalled = stream[:200] + [(stream[249][0] + 0.98, stream[249][1], 250)] + stream[250:]
    feed(monitor, monkeypatch, stalled)
    c = monitor.command_stream(T0, T0 + 20)
    assert c["lost"] == 49 and c["received"] == 451 and c["published"] == 500
    assert c["longest_receive_gap_ms"] > 1000.0
    assert c["longest_pause_ms"] == pytest.approx(20.0, abs=1e-3)
    assert c["published_hz"] == pytest.approx(50.0, rel=1e-6)


def test_a_pause_of_system_1_itself_is_measured_even_with_losses_around_it(monitor, monkeypatch):
    stream = ticks(500, pause_at=250, pause_s=0.6)
    feed(monitor, monkeypatch, stream[:245] + stream[252:])  # and 7 commands lost around it
    c = monitor.command_stream(T0, T0 + 20)
    assert c["lost"] == 7
    assert c["longest_pause_ms"] == pytest.approx(620.0, abs=1e-3)
    assert c["longest_pause_at"] == pytest.approx(T0 + 244 * CONTROL_DT)  # the last command before it
    assert c["published_hz"] < 49.0


def test_a_restarted_publisher_is_seen(monitor, monkeypatch):
    feed(monitor, monkeypatch, ticks(100) + [(rx + 2.1, tx + 2.1, s) for rx, tx, s in ticks(100)])
    assert not monitor.command_stream(T0, T0 + 20)["one_publisher"]


def test_the_monitor_thread_freezes_the_callers_objects_out_of_the_collector_and_times_it():
    before = gc.get_freeze_count()
    mon = MonitorThread()
    try:
        assert gc.get_freeze_count() > before
        gc.collect()
        assert mon.gc_pauses and mon.gc_pauses[-1][1] == 2
    finally:
        mon.close()
    assert gc.get_freeze_count() == 0


def test_a_nodes_diagnostics_are_found_by_its_name(monitor):
    monitor.diagnostics["fast_policy: System 1 policy"] = {"missed_deadlines": "0"}
    monitor.diagnostics["vlm_planner: System 2 planner"] = {"plans": "3"}
    assert monitor.node_diagnostics("fast_policy") == {"missed_deadlines": "0"}
    assert monitor.node_diagnostics("adapter_manager") == {}
