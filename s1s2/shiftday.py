"""A scored "shift day" of a running stack: the cell's lighting follows a timeline through lighting
domains while the stack sorts, and every sort event is counted per domain. Used by `make demo` and
by the evaluations of the learned System 1 (oracle stack) and of the adapter manager (on vs off).

    r = run_shift_day("config/recycling_sim.yaml", [("daylight", 60), ("night_noise", 60)], seed=3)
    r["domains"]["night_noise"] -> {"correct": .., "wrong_bin": .., "missed": .., "dropped": ..}
    r["failures"] -> [{"seed", "domain", "class", "outcome", "item"}, ...]  # each item not sorted right

Everything goes through the ROS nodes at their real rates: the cell is reset (seed) once the stack
is up, its `lighting_schedule` then starts at 0, and an outside subscriber counts /sim/sort_events
and the adapter manager's swaps. Items still on the belt at the end are not counted.
"""

from __future__ import annotations

import time
from pathlib import Path

from s1s2.launcher import Launcher, LaunchError, load_stack
from s1s2.stack import StackConfig

OUTCOMES = ("correct", "wrong_bin", "missed", "dropped")


def schedule_text(schedule) -> str:
    return ",".join(f"{d}:{s:g}" for d, s in schedule)


def _count(events) -> dict[str, dict]:
    domains: dict[str, dict] = {}
    for ev in events:
        dom = domains.setdefault(ev.lighting_domain, dict.fromkeys(OUTCOMES, 0))
        dom[OUTCOMES[ev.outcome]] += 1
    return domains


def _failures(events, seed: int) -> list[dict]:
    """Every item not sorted correctly, with its light and class: misses that cluster in one class
    under one light point at what an adapter cannot read, which counts per domain hide."""
    return [
        {
            "seed": int(seed),
            "domain": ev.lighting_domain,
            "class": ev.class_label,
            "outcome": OUTCOMES[ev.outcome],
            "item": ev.item_id,
        }
        for ev in events
        if OUTCOMES[ev.outcome] != "correct"
    ]


def failures_by_class(records) -> dict[str, dict[str, dict[str, int]]]:
    """{domain: {class: {outcome: n}}} of the `failures` of run_shift_day / run_episodes records."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for r in records:
        for f in r.get("failures", []):
            c = out.setdefault(f["domain"], {}).setdefault(f["class"], {})
            c[f["outcome"]] = c.get(f["outcome"], 0) + 1
    return out


def failures_text(record: dict) -> str:
    """One line of a record's failures by light and class ("night_noise: glass_bottle m2; ..."),
    w / m / d as in `table`; "none" when every item was sorted right."""
    parts = []
    for d, classes in failures_by_class([record]).items():
        items = ", ".join(
            f"{c} " + " ".join(f"{o[0]}{n}" for o, n in sorted(outs.items()))
            for c, outs in sorted(classes.items())
        )
        parts.append(f"{d}: {items}")
    return "; ".join(parts) or "none"


PLANNER_COUNTERS = ("plans", "skipped_ticks", "plans_waited_for_swap")


def _planner_delta(before: dict[str, str], after: dict[str, str]) -> dict:
    """The planner's counters over an episode (from its /diagnostics), and the longest wait of a
    plan for an adapter swap so far; {} without a planner (the oracle stack)."""
    if not after:
        return {}
    out = {k: int(after[k]) - int(before.get(k, 0)) for k in PLANNER_COUNTERS if k in after}
    if "swap_wait_ms_max" in after:
        out["swap_wait_ms_max"] = float(after["swap_wait_ms_max"])
    return out


def _totals(domains: dict[str, dict]) -> dict:
    return {k: sum(d[k] for d in domains.values()) for k in OUTCOMES}


def run_episodes(
    stack_config,
    seeds: list[int],
    episode_s: float,
    overrides: dict[str, list[str]] | None = None,
    log_dir: Path | None = None,
    warmup_s: float = 8.0,
    ready_timeout: float = 240.0,
    progress=None,
) -> dict:
    """Start the stack once, then for each seed: reset the cell (seed), run `episode_s` of wall
    time and count its sort events (per lighting domain). Returns the run's record with one entry
    per seed under "episodes". `progress(i, seed, record)` is called after each episode."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from s1s2 import topics
    from s1s2.ros import qos_profile
    from s1s2_interfaces.msg import AdapterStatus, SortEvent
    from s1s2_interfaces.srv import ResetSim

    stack = stack_config if isinstance(stack_config, StackConfig) else load_stack(stack_config)
    launcher = Launcher(
        stack, {k: list(v) for k, v in (overrides or {}).items()}, log_dir=log_dir, echo=False
    )
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("s1s2_shift_day", context=ctx)
    events, statuses = [], []
    planner_diag: dict[str, str] = {}  # the planner's latest /diagnostics values

    def on_diag(msg) -> None:
        for st in msg.status:
            if st.name.endswith(": planner"):
                planner_diag.update({kv.key: kv.value for kv in st.values})

    node.create_subscription(
        SortEvent, topics.SORT_EVENTS.name, events.append, qos_profile(topics.SORT_EVENTS.qos)
    )
    node.create_subscription(AdapterStatus, topics.ADAPTER_STATUS.name, statuses.append,
                             qos_profile(topics.ADAPTER_STATUS.qos))  # fmt: skip
    node.create_subscription(
        DiagnosticArray, topics.DIAGNOSTICS.name, on_diag, qos_profile(topics.DIAGNOSTICS.qos)
    )
    reset = node.create_client(ResetSim, topics.RESET_SIM_SERVICE)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)

    def spin_for(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ex.spin_once(timeout_sec=0.05)

    episodes = []
    swaps0 = None
    try:
        launcher.start(ready_timeout)
        spin_for(warmup_s)
        if not reset.wait_for_service(timeout_sec=10.0):
            raise LaunchError("the cell's reset service did not appear")
        for i, seed in enumerate(seeds):
            fut = reset.call_async(ResetSim.Request(seed=int(seed)))
            end = time.monotonic() + 10.0
            while not fut.done() and time.monotonic() < end:
                ex.spin_once(timeout_sec=0.05)
            if not (fut.done() and fut.result().success):
                raise LaunchError(f"the cell did not reset to seed {seed}")
            events.clear()
            if swaps0 is None:
                swaps0 = statuses[-1].swap_count if statuses else 0
            diag0 = dict(planner_diag)
            t0 = time.monotonic()
            spin_for(episode_s)
            wall = time.monotonic() - t0
            done = list(events)
            domains = _count(done)
            if planner_diag:  # a planner runs: its next diagnostics (1 Hz) cover the whole episode
                spin_for(1.2)
            failed = launcher.failed()
            if failed:
                raise LaunchError(failed)
            rec = {
                "seed": int(seed),
                "wall_s": round(wall, 1),
                "domains": domains,
                "totals": _totals(domains),
                "failures": _failures(done, seed),
                "planner": _planner_delta(diag0, planner_diag),
            }
            episodes.append(rec)
            if progress is not None:
                progress(i, seed, rec)
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        launcher.stop()
    domains: dict[str, dict] = {}
    for e in episodes:
        for d, c in e["domains"].items():
            acc = domains.setdefault(d, dict.fromkeys(OUTCOMES, 0))
            for k in OUTCOMES:
                acc[k] += c[k]
    planner: dict = {}
    for e in episodes:
        for k, v in e["planner"].items():
            planner[k] = max(planner.get(k, 0.0), v) if k == "swap_wait_ms_max" else planner.get(k, 0) + v
    return {
        "stack": stack.name,
        "planner": planner,
        "episodes": episodes,
        "domains": domains,
        "totals": _totals(domains),
        "failures": [f for e in episodes for f in e["failures"]],
        "adapter_swaps": (statuses[-1].swap_count - (swaps0 or 0)) if statuses else None,
        "adapters_seen": sorted({s.active_adapter for s in statuses}) if statuses else [],
    }


def run_shift_day(
    stack_config,
    schedule: list[tuple[str, float]],
    seed: int = 0,
    overrides: dict[str, list[str]] | None = None,
    log_dir: Path | None = None,
    warmup_s: float = 8.0,
    ready_timeout: float = 240.0,
) -> dict:
    """One episode whose lighting follows `schedule` (the cell's `lighting_schedule` starts at the
    reset), scored per domain."""
    over = {k: list(v) for k, v in (overrides or {}).items()}
    over.setdefault("conveyor_sim", []).append(f"lighting_schedule:={schedule_text(schedule)}")
    day_s = float(sum(s for _, s in schedule))
    r = run_episodes(stack_config, [seed], day_s, over, log_dir, warmup_s, ready_timeout)
    domains = {d: dict.fromkeys(OUTCOMES, 0) for d, _ in schedule}
    domains.update(r["domains"])
    return {
        "stack": r["stack"],
        "schedule": [list(x) for x in schedule],
        "seed": seed,
        "wall_s": r["episodes"][0]["wall_s"],
        "domains": domains,
        "totals": r["totals"],
        "failures": r["failures"],
        "adapter_swaps": r["adapter_swaps"],
        "adapters_seen": r["adapters_seen"],
        "planner": r["planner"],
    }


def table(results: dict[str, dict], domains: list[str], percent: bool = False) -> list[str]:
    """Markdown: one row per domain, `correct/total (wrong, missed, dropped)` per run; with
    `percent`, the correct share too."""
    names = list(results)
    lines = ["| domain | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for d in [*domains, "TOTAL"]:
        cells = []
        for n in names:
            r = results[n]
            c = r["totals"] if d == "TOTAL" else r["domains"].get(d, dict.fromkeys(OUTCOMES, 0))
            tot = sum(c[k] for k in OUTCOMES)
            share = ("n/a" if not tot else f"{100 * c['correct'] / tot:.1f}") + " %, " if percent else ""
            cells.append(f"{c['correct']}/{tot} ({share}w{c['wrong_bin']} m{c['missed']} d{c['dropped']})")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return lines
