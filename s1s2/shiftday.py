"""A scored "shift day" of a running stack: the cell's lighting follows a timeline through lighting
domains while the stack sorts, and every sort event is counted per domain. Used by `make demo` and
by the evaluations of the learned System 1 (oracle stack) and of the adapter manager (on vs off).

    r = run_shift_day("config/recycling_sim.yaml", [("daylight", 60), ("night_noise", 60)], seed=3)
    r["domains"]["night_noise"] -> {"correct": .., "wrong_bin": .., "missed": .., "dropped": ..}
    r["failures"] -> [{"seed", "domain", "class", "outcome", "item", "why"}, ...]  # each item not sorted right
    r["failures"][0]["why"] -> {"cause": "never named", "right": 0, "holds": 5, ...}  # see ItemTrace

Everything goes through the ROS nodes at their real rates: the cell is reset (seed) once the stack
is up, its `lighting_schedule` then starts at 0, and an outside subscriber counts /sim/sort_events
and the adapter manager's swaps. Items still on the belt at the end are not counted. The same
subscriber follows the published goals and the cell's ground truth (ItemTrace) to say, for each
item not sorted right, whether System 2 never named it, named the wrong class, or named it and
System 1 did not sort it.
"""

from __future__ import annotations

import time
from pathlib import Path

from s1s2.cli import parse_seeds
from s1s2.launcher import Launcher, LaunchError, load_stack
from s1s2.stack import StackConfig

OUTCOMES = ("correct", "wrong_bin", "missed", "dropped")


def schedule_text(schedule) -> str:
    return ",".join(f"{d}:{s:g}" for d, s in schedule)


# How the cell attributes an item to a light (SortEvent.lighting_domain): since 2026-12-07 the light
# it was presented to the arm in; before, the light when it left play (a missed item ~10 s after
# passing the arm, often under the next light of a shift day). Records carry it as "attribution".
ATTRIBUTION = "presented"


def reattribute(record: dict) -> tuple[dict, int]:
    """A record made before ATTRIBUTION, with each missed item (its failure trace) moved to the
    light it passed the arm in: first seen (spawned) + the belt's travel from the spawner to the
    arm's base. Items that reached a bin (right or wrong) or fell were scored within a second or two
    of the pick and keep their light. Returns (copy, items moved); a current record comes back as is."""
    import copy

    from conveyor_sim.items import spawn_x
    from conveyor_sim.lighting import ShiftSchedule
    from s1s2.cell import DEFAULT_CELL

    if record.get("attribution") == ATTRIBUTION or not record.get("schedule"):
        return record, 0
    belt = DEFAULT_CELL.belt
    to_arm_s = (DEFAULT_CELL.arm.base[0] - spawn_x(belt)) / belt.speed
    schedule = ShiftSchedule(tuple((d, float(s)) for d, s in record["schedule"]))  # the cell's own lookup
    rec = copy.deepcopy(record)
    moved = 0
    for f in rec.get("failures", []):
        seen = f.get("why", {}).get("seen_s")
        if seen is None or f["outcome"] != "missed":
            continue
        new = schedule.domain_at(seen + to_arm_s)
        if new != f["domain"]:
            rec["domains"][f["domain"]][f["outcome"]] -= 1
            rec["domains"].setdefault(new, dict.fromkeys(OUTCOMES, 0))[f["outcome"]] += 1
            f["domain"] = new
            moved += 1
    rec["attribution"] = f"{ATTRIBUTION} (re-attributed from item traces: {moved} moved)"
    return rec, moved


def _count(events) -> dict[str, dict]:
    domains: dict[str, dict] = {}
    for ev in events:
        dom = domains.setdefault(ev.lighting_domain, dict.fromkeys(OUTCOMES, 0))
        dom[OUTCOMES[ev.outcome]] += 1
    return domains


# A plan "names" an item when its pick point lies this close to the item on the belt: the issue's
# line between a right pick and a wrong one (a confident wrong pick is > 5 cm off).
NAMES_ITEM_M = 0.05
CAUSES = (
    "never named",  # no confident plan named it: System 2 held or named other items
    "wrong class",  # the plan that named it last before the grasp gave another class: System 2
    "named, not picked",  # confident right plans named it, the cup never held it: System 1 or time
    "lost after grasp",  # the cup held it, it left play unsorted: System 1 or the grasp
    "placed wrong",  # named with its class, still in the wrong bin: System 1
    "picked unnamed",  # in a wrong bin, though no plan named it: System 1 took another item
)


class ItemTrace:
    """Why each item not sorted right was lost, from what an outside observer sees: the cell's
    ground truth (items on the belt, the cup's hold) and the goals System 2 published. Pure Python:
    run_episodes feeds it from ROS messages; times are the observer's clock (seconds).

    A goal names an item when its pick point (belt frame) is within NAMES_ITEM_M of the item's
    position on the belt; holds (no label) name nothing. Items move with the belt, so their belt
    coordinates stay put while they lie on it."""

    def __init__(self, names_item_m: float = NAMES_ITEM_M, t0: float = 0.0):
        self.names_item_m = float(names_item_m)
        self.t0 = float(t0)  # the episode's start: why() gives times from it
        self.items: dict[str, dict] = {}
        self.plans: list[tuple[float, str]] = []  # (t, named item id, "" hold, "?" nothing near)

    def on_truth(self, t: float, belt_position: float, items) -> None:
        """`items`: (item_id, class_label, x_world, y_world, on_belt, grasped) per item in play."""
        for item_id, label, x, y, on_belt, grasped in items:
            it = self.items.setdefault(
                item_id, {"class": label, "seen": t, "xy": None, "grasped": None, "names": []}
            )
            if grasped and it["grasped"] is None:
                it["grasped"] = t
            if on_belt and not grasped:
                it["xy"] = (x - belt_position, y)

    def on_goal(self, t: float, label: str, belt_xy, confidence: float, adapter: str = "") -> str:
        """Record one published goal (made with `adapter`, "" the base); return the id of the item
        it names ("" hold, "?" none)."""
        if not label:
            self.plans.append((t, ""))
            return ""
        best, best_d = "?", self.names_item_m
        for item_id, it in self.items.items():
            if it["xy"] is None or it["grasped"] is not None or it.get("gone") is not None:
                continue
            d = ((it["xy"][0] - belt_xy[0]) ** 2 + (it["xy"][1] - belt_xy[1]) ** 2) ** 0.5
            if d <= best_d:
                best, best_d = item_id, d
        if best != "?":
            self.items[best]["names"].append((t, label, float(confidence), adapter))
        self.plans.append((t, best))
        return best

    def on_sort(self, t: float, item_id: str) -> None:
        if item_id in self.items:
            self.items[item_id]["gone"] = t

    def why(self, item_id: str, outcome: str) -> dict:
        """{"cause": one of CAUSES, and the evidence: plans naming it before any grasp (right class /
        other class), and, while it was in play, holds, plans naming other items and plans whose
        pick point named no item}."""
        it = self.items.get(item_id)
        if it is None:
            return {"cause": "never named", "right": 0, "other_class": 0, "holds": 0, "other_items": 0,
                    "nowhere": 0, "named_as": [], "named_with": []}  # fmt: skip
        end = it.get("gone") if it.get("gone") is not None else float("inf")
        before_grasp = [n for n in it["names"] if it["grasped"] is None or n[0] <= it["grasped"]]
        right = sum(1 for n in before_grasp if n[1] == it["class"])
        during = [p for p in self.plans if it["seen"] <= p[0] <= end]
        out = {
            "right": right,
            "other_class": len(before_grasp) - right,
            "holds": sum(1 for p in during if p[1] == ""),
            "other_items": sum(1 for p in during if p[1] not in ("", "?", item_id)),
            "nowhere": sum(1 for p in during if p[1] == "?"),  # > names_item_m from every item
            "named_as": sorted({n[1] for n in before_grasp}),
            "named_with": sorted({n[3] for n in before_grasp}),  # adapters ("" = the base)
        }
        if outcome == "wrong_bin" and not before_grasp:
            cause = "picked unnamed"
        elif outcome == "wrong_bin":
            cause = "placed wrong" if before_grasp[-1][1] == it["class"] else "wrong class"
        elif it["grasped"] is not None:
            cause = "lost after grasp"
        elif right:
            cause = "named, not picked"
        elif before_grasp:
            cause = "wrong class"
        else:
            cause = "never named"
        times = {  # seconds from the episode's start: first seen in play, first named, left play
            "seen_s": it["seen"],
            "named_s": it["names"][0][0] if it["names"] else None,
            "gone_s": it.get("gone"),
        }
        out |= {k: None if v is None else round(v - self.t0, 1) for k, v in times.items()}
        return {"cause": cause, **out}


def _failures(events, seed: int, trace: ItemTrace | None = None) -> list[dict]:
    """Every item not sorted correctly, with its light and class: misses that cluster in one class
    under one light point at what an adapter cannot read, which counts per domain hide. With a
    `trace`, each also says why (ItemTrace.why: "cause" and its evidence)."""
    out = []
    for ev in events:
        outcome = OUTCOMES[ev.outcome]
        if outcome == "correct":
            continue
        f = {
            "seed": int(seed),
            "domain": ev.lighting_domain,
            "class": ev.class_label,
            "outcome": outcome,
            "item": ev.item_id,
        }
        if trace is not None:
            f["why"] = trace.why(ev.item_id, outcome)
        out.append(f)
    return out


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


def failures_by_cause(records) -> dict[str, dict[str, int]]:
    """{domain: {cause: n}} over the traced `failures` of run_shift_day / run_episodes records."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        for f in r.get("failures", []):
            if "why" in f:
                c = out.setdefault(f["domain"], {})
                c[f["why"]["cause"]] = c.get(f["why"]["cause"], 0) + 1
    return out


def causes_text(record: dict) -> str:
    """One line of a record's failures by light and cause ("night_noise: never named 2, ...")."""
    parts = [
        f"{d}: " + ", ".join(f"{c} {n}" for c, n in sorted(causes.items()))
        for d, causes in failures_by_cause([record]).items()
    ]
    return "; ".join(parts) or "none"


PLANNER_COUNTERS = (
    "plans", "skipped_ticks", "plans_waited_for_swap", "plans_withheld", "picks_resent", "lighting_holds",
)  # fmt: skip


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
    from s1s2_interfaces.msg import AdapterStatus, Goal, GroundTruth, SortEvent
    from s1s2_interfaces.srv import ResetSim

    stack = stack_config if isinstance(stack_config, StackConfig) else load_stack(stack_config)
    launcher = Launcher(
        stack, {k: list(v) for k, v in (overrides or {}).items()}, log_dir=log_dir, echo=False
    )
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("s1s2_shift_day", context=ctx)
    events, statuses = [], []
    # every node's latest /diagnostics (message and values), kept in each episode's record so a
    # day that went wrong can be read afterwards (a System 1 that stopped picking, physics resets)
    node_diag: dict[str, dict] = {}

    def on_diag(msg) -> None:
        for st in msg.status:
            node_diag[st.name] = {"message": st.message, **{kv.key: kv.value for kv in st.values}}

    def planner_diag() -> dict[str, str]:
        """The planner's latest /diagnostics values ({} without a planner)."""
        return next((v for k, v in node_diag.items() if k.endswith(": planner")), {})

    trace = ItemTrace()  # rebound per episode; the callbacks read the current one
    belt = [0.0]  # the latest belt odometry, for a goal in the world frame

    def on_sort(msg) -> None:
        events.append(msg)
        trace.on_sort(time.monotonic(), msg.item_id)

    def on_truth(msg) -> None:
        belt[0] = msg.belt_position
        trace.on_truth(time.monotonic(), msg.belt_position, [
            (i.item_id, i.class_label, i.pose.position.x, i.pose.position.y, i.on_belt, i.grasped)
            for i in msg.items
        ])  # fmt: skip

    def on_goal(msg) -> None:
        x, y = msg.target_pose.position.x, msg.target_pose.position.y
        if msg.header.frame_id == topics.WORLD_FRAME:
            x -= belt[0]
        trace.on_goal(time.monotonic(), msg.target_label, (x, y), msg.confidence, msg.adapter_id)

    node.create_subscription(SortEvent, topics.SORT_EVENTS.name, on_sort, qos_profile(topics.SORT_EVENTS.qos))
    node.create_subscription(
        GroundTruth, topics.GROUND_TRUTH.name, on_truth, qos_profile(topics.GROUND_TRUTH.qos)
    )
    node.create_subscription(Goal, topics.GOAL_TOPIC.name, on_goal, qos_profile(topics.GOAL_TOPIC.qos))
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
            diag0 = dict(planner_diag())
            t0 = time.monotonic()
            trace = ItemTrace(t0=t0)  # a new episode: the reset removed every item
            spin_for(episode_s)
            wall = time.monotonic() - t0
            done = list(events)
            domains = _count(done)
            if planner_diag():  # a planner runs: its next diagnostics (1 Hz) cover the whole episode
                spin_for(1.2)
            failed = launcher.failed()
            if failed:
                raise LaunchError(failed)
            rec = {
                "seed": int(seed),
                "wall_s": round(wall, 1),
                "domains": domains,
                "totals": _totals(domains),
                "failures": _failures(done, seed, trace),
                "planner": _planner_delta(diag0, planner_diag()),
                "diagnostics": {k: dict(v) for k, v in node_diag.items()},
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
        "attribution": ATTRIBUTION,
        "schedule": [list(x) for x in schedule],
        "seed": seed,
        "wall_s": r["episodes"][0]["wall_s"],
        "domains": domains,
        "totals": r["totals"],
        "failures": r["failures"],
        "adapter_swaps": r["adapter_swaps"],
        "adapters_seen": r["adapters_seen"],
        "planner": r["planner"],
        "diagnostics": r["episodes"][0]["diagnostics"],  # every node's last /diagnostics of the day
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


# --- Pooling shift days and the manager ON / OFF comparison (`s1s2 shiftday`) ---------------------

# The adapter manager's targets (issue 10): ON beats OFF by GAIN_PTS where the base alone drops by
# DROP_PTS or more from its own daylight, and ON stays within WITHIN_PTS of ON's daylight.
GAIN_PTS = 20.0
DROP_PTS = 20.0
WITHIN_PTS = 5.0
RUNS = {"on": "manager ON", "off": "manager OFF", "oracle": "ORACLE goals", "expert": "scripted expert"}


def pool(records) -> dict[str, dict[str, int]]:
    """Counts per domain summed over run_shift_day records (the days of one run), in the order
    the domains first appear."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        for d, c in r["domains"].items():
            acc = out.setdefault(d, dict.fromkeys(OUTCOMES, 0))
            for k in OUTCOMES:
                acc[k] += int(c.get(k, 0))
    return out


def _rate(c: dict[str, int]) -> float | None:
    n = sum(c[k] for k in OUTCOMES)
    return 100.0 * c["correct"] / n if n else None


def _gain_intervals(on_records, off_records, n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95 % interval of ON - OFF per domain by resampling whole days (items of one day share a
    scene stream, so they are not independent draws); one set of resamples serves every domain.
    Days with the same seed in both runs are resampled as pairs; otherwise each run's days are
    resampled on their own. A domain absent from over half of the resamples gets no interval."""
    import random

    rng = random.Random(seed)
    by_seed_on = {r.get("seed"): r for r in on_records}
    by_seed_off = {r.get("seed"): r for r in off_records}
    paired = (
        len(by_seed_on) == len(on_records)
        and len(by_seed_off) == len(off_records)
        and set(by_seed_on) == set(by_seed_off)
    )
    keys = sorted(by_seed_on, key=str)
    gains: dict[str, list[float]] = {}
    for _ in range(n_boot):
        if paired:
            pick = [rng.choice(keys) for _ in keys]
            on_s, off_s = [by_seed_on[k] for k in pick], [by_seed_off[k] for k in pick]
        else:
            on_s = [rng.choice(on_records) for _ in on_records]
            off_s = [rng.choice(off_records) for _ in off_records]
        on, off = pool(on_s), pool(off_s)
        for d in on.keys() & off.keys():
            ra, rb = _rate(on[d]), _rate(off[d])
            if ra is not None and rb is not None:
                gains.setdefault(d, []).append(ra - rb)
    out = {}
    for d, g in gains.items():
        if len(g) >= n_boot // 2:
            g.sort()
            out[d] = g[int(0.025 * (len(g) - 1))], g[int(round(0.975 * (len(g) - 1)))]
    return out


def compare(
    on_records,
    off_records,
    reference: str = "daylight",
    drop_pts: float = DROP_PTS,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """Manager ON against OFF (the base alone), pooled over days, one row per domain: both rates,
    ON - OFF with its 95 % interval over days (`gain_ci`, `n_boot` resamples, None with one day),
    OFF's drop from its own `reference` light, ON's gap to its own, and the targets. `gain_met` is
    None where the base drops less than `drop_pts` (no 20-point gain to make)."""
    on, off = pool(on_records), pool(off_records)
    if reference not in on or reference not in off:
        raise ValueError(f"reference light {reference!r} is in neither or only one of the runs")
    on_ref, off_ref = _rate(on[reference]), _rate(off[reference])
    several = n_boot and min(len(on_records), len(off_records)) > 1
    intervals = _gain_intervals(on_records, off_records, n_boot, seed) if several else {}
    rows = []
    for d in [*on, *(d for d in off if d not in on)]:
        c_on, c_off = on.get(d, dict.fromkeys(OUTCOMES, 0)), off.get(d, dict.fromkeys(OUTCOMES, 0))
        r_on, r_off = _rate(c_on), _rate(c_off)
        row = {"domain": d, "on": c_on, "off": c_off, "on_rate": r_on, "off_rate": r_off,
               "gain": None, "gain_ci": None, "off_drop": None, "on_gap": None, "within": None, "gain_met": None}  # fmt: skip
        if r_on is not None and r_off is not None:
            row["gain"] = r_on - r_off
            row["gain_ci"] = intervals.get(d)
        if d != reference and None not in (r_on, r_off, on_ref, off_ref):
            row["off_drop"] = r_off - off_ref
            row["on_gap"] = r_on - on_ref
            row["within"] = row["on_gap"] >= -WITHIN_PTS
            if row["off_drop"] <= -drop_pts:
                row["gain_met"] = row["gain"] >= GAIN_PTS
        rows.append(row)
    return rows


def _cell(c: dict[str, int]) -> str:
    r = _rate(c)
    extra = ", ".join(f"{c[k]} {k[0]}" for k in OUTCOMES[1:] if c[k])
    share = "n/a" if r is None else f"{r:.1f} %"
    return f"{c['correct']}/{sum(c[k] for k in OUTCOMES)} ({share}{'; ' + extra if extra else ''})"


def compare_table(rows: list[dict], reference: str = "daylight") -> list[str]:
    """Markdown of compare(): w / m / d = wrong bin / missed / dropped; bold where a target is
    missed."""

    def pts(v, bold=False):
        s = "-" if v is None else f"{v:+.1f}"
        return f"**{s}**" if bold else s

    lines = [
        f"| domain | ON | OFF (base alone) | ON - OFF (target +{GAIN_PTS:g} where OFF drops {DROP_PTS:g}+) "
        f"| 95 % interval over days | OFF drop from {reference} | ON vs ON {reference} (within {WITHIN_PTS:g}?) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = "-" if r.get("gain_ci") is None else f"{r['gain_ci'][0]:+.1f} to {r['gain_ci'][1]:+.1f}"
        gap = (
            "-"
            if r["on_gap"] is None
            else f"{pts(r['on_gap'], r['within'] is False)} ({'yes' if r['within'] else 'no'})"
        )
        lines.append(f"| {r['domain']} | {_cell(r['on'])} | {_cell(r['off'])} | "
                     f"{pts(r['gain'], r['gain_met'] is False)} | {ci} | {pts(r['off_drop'])} | {gap} |")  # fmt: skip
    return lines


def plot_compare(rows: list[dict], path: Path, reference: str = "daylight", title: str = "") -> str:
    """compare()'s rows as a figure saved to `path`; returns its file name. Left: correct sorts per
    light, ON and OFF, with the band within WITHIN_PTS of ON's `reference` light. Right: ON - OFF
    with its 95 % interval over days, green where the +GAIN_PTS target is met, red where it is
    missed, grey where the base drops less than DROP_PTS (no target)."""
    import numpy as np

    from s1s2.bench import save_plot

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = next((r["on_rate"] for r in rows if r["domain"] == reference), None)
    x = np.arange(len(rows))
    labels = [  # the light, and how far the base alone drops under it
        r["domain"].replace("_", "\n", 1) + ("" if r["off_drop"] is None else f"\nOFF {r['off_drop']:+.1f}")
        for r in rows
    ]

    def draw(plt):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.2))
        a1.bar(x - 0.2, [r["on_rate"] or 0.0 for r in rows], 0.4, label="manager ON", color="tab:green")
        a1.bar(x + 0.2, [r["off_rate"] or 0.0 for r in rows], 0.4, label="OFF (base alone)", color="tab:gray")
        if ref is not None:
            a1.axhspan(ref - WITHIN_PTS, ref, color="tab:green", alpha=0.15,
                       label=f"within {WITHIN_PTS:g} points of ON {reference}")  # fmt: skip
        a1.set_xticks(x, labels, fontsize=7)
        a1.set(ylabel="correct sorts (% of items)", ylim=(0, 109), title="correct sorts per light")
        a1.legend(fontsize=7, ncol=3, loc="upper center")
        for k, r in enumerate(rows):
            if r["gain"] is None:
                continue
            colour = {True: "tab:green", False: "tab:red", None: "tab:gray"}[r["gain_met"]]
            ci = r.get("gain_ci")
            err = None if ci is None else [[r["gain"] - ci[0]], [ci[1] - r["gain"]]]
            a2.errorbar([k], [r["gain"]], yerr=err, fmt="o", color=colour, capsize=4)
            a2.annotate(
                f"{r['gain']:+.1f}", (k, r["gain"]), xytext=(6, 0), textcoords="offset points", fontsize=7
            )
        a2.axhline(GAIN_PTS, ls="--", color="tab:red", lw=1,
                   label=f"target +{GAIN_PTS:g} where OFF drops {DROP_PTS:g} or more")  # fmt: skip
        a2.axhline(0.0, color="k", lw=0.6)
        a2.set_xticks(x, labels, fontsize=7)
        a2.set(ylabel="ON - OFF (points)", title="gain of the manager, 95 % interval over days")
        a2.legend(fontsize=7, loc="upper left")
        if title:
            fig.suptitle(title, fontsize=9)
        return fig

    return save_plot(path, draw)


def _load_run(path: Path, name: str) -> dict:
    """The `name` record of a shift-day file ({run name: record}, as `s1s2 shiftday run` writes)."""
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable shift-day record ({exc})") from None
    rec = data.get(name) if isinstance(data, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("domains"), dict):
        raise ValueError(f"{path}: no {name!r} record with per-domain counts")
    return rec


def main(argv: list[str] | None = None) -> int:
    """`s1s2 shiftday run|table`."""
    import argparse
    import json

    ap = argparse.ArgumentParser(
        prog="s1s2 shiftday", description="Shift days through the ROS nodes, and their table."
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser(
        "run", help="shift days of the six lighting domains, one stack at a time, one file per run and seed"
    )
    run.add_argument("--seeds", required=True, help="e.g. 31-34 or 3,5-6")
    run.add_argument("--runs", nargs="+", choices=list(RUNS), default=["on", "off"])
    run.add_argument(
        "--domain-s", type=float, default=60.0, help="seconds of each lighting domain (default 60)"
    )
    run.add_argument(
        "--out", default="runs/shiftday/{run}_seed{seed}.json", help="file per run and seed ({run}, {seed})"
    )
    run.add_argument(
        "--logs", default="runs/shiftday/logs", help="node logs, one folder per record (not results/)"
    )
    tab = sub.add_parser(
        "table", help="pool shift-day files: manager ON against OFF per domain, with the targets"
    )
    tab.add_argument("--on", nargs="+", required=True, type=Path, help="files with a 'manager ON' record")
    tab.add_argument("--off", nargs="+", required=True, type=Path, help="files with a 'manager OFF' record")
    tab.add_argument("--reference", default="daylight")
    tab.add_argument(
        "--plot", type=Path, help="also draw the table to this PNG (rates and gains with intervals)"
    )
    a = ap.parse_args(argv)

    if a.cmd == "table":
        try:
            on = [reattribute(_load_run(p, RUNS["on"])) for p in a.on]
            off = [reattribute(_load_run(p, RUNS["off"])) for p in a.off]
            rows = compare([r for r, _ in on], [r for r, _ in off], a.reference)
        except ValueError as exc:
            ap.error(str(exc))
        days = lambda rs: ", ".join(str(r.get("seed")) for r, _ in rs)  # noqa: E731
        print(f"manager ON: {len(on)} days (seeds {days(on)}); OFF: {len(off)} days (seeds {days(off)})")
        n_old = sum(1 for r, _ in on + off if r.get("attribution") != ATTRIBUTION)
        if n_old:
            print(f"{n_old} records made before items were scored under the light they passed the arm in: "
                  f"{sum(m for _, m in on + off)} missed items moved to that light by their traces")  # fmt: skip
        print("\n".join(compare_table(rows, a.reference)))
        if a.plot:
            plot_compare(rows, a.plot, a.reference, f"{len(on)} days ON, {len(off)} days OFF")
            print(f"plot: {a.plot}")
        return 0

    from conveyor_sim.lighting import DOMAINS
    from s1s2.demo import run_shift_days

    try:
        seeds = parse_seeds(a.seeds)
        a.out.format(run="on", seed=0)
    except ValueError as exc:
        ap.error(str(exc))
    except (KeyError, IndexError):
        ap.error(f"--out {a.out!r}: only {{run}} and {{seed}} may be filled in")
    if not a.domain_s > 0:
        ap.error(f"--domain-s {a.domain_s}: must be > 0")
    schedule = [(d, a.domain_s) for d in DOMAINS]
    code = 0
    for seed in seeds:
        for key in a.runs:
            name = RUNS[key]
            out = Path(a.out.format(run=key, seed=seed))
            r = run_shift_days(schedule, seed, Path(a.logs) / out.stem, names=(name,))
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(r, indent=1, default=str) + "\n")
            if "error" in r[name]:
                print(f"seed {seed} {name}: FAILED: {r[name]['error'][:300]}", flush=True)
                code = 1
                continue
            print(
                f"seed {seed} {name}: " + " ".join(table({name: r[name]}, list(DOMAINS))[-1:]) + f" -> {out}",
                flush=True,
            )
    return code
