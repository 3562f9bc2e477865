"""Training sets from expert episodes.

Policy set (fast_policy), one `.npz`, one row per 50 Hz control tick:
    joint_pos (N,4) f32         measured joint positions at the tick
    joint_vel (N,4) f32         measured joint velocities
    suction (N,) f32            suction state at the tick (the previous command), 0/1
    goal_target (N,3) f32       the expert's target pick point, world frame, at that time (0 if none)
    goal_place (N,3) f32        drop point above the target's bin, world frame (0 if none)
    goal_latent (N,32) f32      the goal's latent: the oracle's is the trained planner's layout
                                (s1s2.latent: class, bin, pick point; unit norm); 0 if no target
    has_goal (N,) f32           1 when the expert had a target (or carried an item)
    holding (N,) f32            the vacuum switch at the tick: 1 while an item is on the cup
    belt_speed (N,) f32         belt speed (m/s) at the tick
    goal_target_vel (N,3) f32   velocity of the pick point (the belt's for items on it; 0 if none)
    action_joint_pos (N,K,4) f32  the next K=10 commanded joint positions (ticks t .. t+K-1)
    action_suction (N,K) f32    the next K suction commands
    episode_index (N,) i64
Windows that run past an episode's end repeat its last command. This is a raw tick log in joint
space, independent of the policy's observation spec: `python -m s1s2_training.policy.data
--from-raw policy.npz --out train.npz` turns it into the spec-v2 training arrays (tip-relative
features, tip-waypoint labels), so recordings of any controller (teleoperation, another policy, a
real robot) can train System 1.

Planner set (vlm_planner), one `.npz`, one row per camera frame (10 Hz):
    images (N,H,W,3) u8, instruction (N,) str, target_class (N,) str ("" = none), pick_point (N,3) f32,
    bin_id (N,) str, has_target (N,) f32, lighting (N,) str, items_json (N,) str (every item: class,
    bin, pick point, pixel), episode_index (N,) i64, camera_info_json str.

`make_policy_dataset` builds the policy set straight from expert rollouts (no rendering, no MCAP);
`export_mcap` builds both sets from recorded MCAP files (`s1s2 sim export`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver
from conveyor_sim.lighting import DOMAINS
from s1s2 import topics as tp
from s1s2.cell import DEFAULT_CELL
from s1s2.topics import CONTROL_DT, LATENT_DIM

HORIZON = 10  # K


def _windows(cmd_q: np.ndarray, cmd_s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(cmd_q)
    idx = np.minimum(np.arange(n)[:, None] + np.arange(k)[None, :], n - 1)
    return cmd_q[idx].astype(np.float32), cmd_s[idx].astype(np.float32)


def _episode_arrays(rows: list[dict], episode: int, k: int) -> dict[str, np.ndarray]:
    cmd_q = np.array([r["cmd_q"] for r in rows], dtype=np.float64)
    cmd_s = np.array([r["cmd_s"] for r in rows], dtype=np.float64)
    aq, asu = _windows(cmd_q, cmd_s, k)
    return {
        "joint_pos": np.array([r["q"] for r in rows], np.float32),
        "joint_vel": np.array([r["qd"] for r in rows], np.float32),
        "suction": np.array([r["suction"] for r in rows], np.float32),
        "goal_target": np.array([r["target"] for r in rows], np.float32),
        "goal_place": np.array([r["place"] for r in rows], np.float32),
        "goal_latent": np.array([r["latent"] for r in rows], np.float32),
        "has_goal": np.array([r["has_goal"] for r in rows], np.float32),
        "holding": np.array([r["holding"] for r in rows], np.float32),
        "belt_speed": np.array([r["belt_speed"] for r in rows], np.float32),
        "goal_target_vel": np.array([r["target_vel"] for r in rows], np.float32),
        "action_joint_pos": aq,
        "action_suction": asu,
        "episode_index": np.full(len(rows), episode, np.int64),
    }


def _concat(parts: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def make_policy_dataset(
    n_episodes: int,
    seed: int,
    out_path,
    episode_s: float = 30.0,
    horizon: int = HORIZON,
    domains: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """Roll out the scripted expert for `n_episodes` (episode i: seed + i) and save the policy set
    to `out_path` (.npz). Returns {"path", "rows", "episodes", "score": totals}."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes!r}")
    doms = list(domains) if domains else list(DOMAINS)
    sim = CellSim(SimConfig(seed=seed, render_enabled=False))
    drv = ExpertDriver(sim, CONTROL_DT)
    parts, scores = [], []
    zero3 = np.zeros(3)
    try:
        from tqdm import tqdm

        for ep in tqdm(range(n_episodes), desc="policy dataset", unit="ep", disable=not progress):
            sim.reset(seed + ep)
            sim.set_lighting(doms[ep % len(doms)])
            drv.reset()
            rows = []
            for _ in range(int(round(episode_s / CONTROL_DT))):
                q, qd, suction = sim.joint_positions(), sim.joint_velocities(), sim.suction
                act = drv.compute()
                g = drv.last_goal
                rows.append(
                    {
                        "q": q, "qd": qd, "suction": float(suction),
                        "target": g.pick_world if g.pick_world is not None else zero3,
                        "place": g.place_world if g.place_world is not None else zero3,
                        "latent": g.latent if g.has_target else np.zeros(LATENT_DIM, np.float32),
                        "has_goal": float(g.has_target),
                        "holding": float(sim.holding() is not None), "belt_speed": float(sim.belt_speed),
                        "target_vel": np.array([sim.belt_speed, 0.0, 0.0]) if g.has_target else zero3,
                        "cmd_q": act.q, "cmd_s": float(act.suction),
                    }
                )  # fmt: skip
                drv.apply(act)
                sim.step(CONTROL_DT)
            parts.append(_episode_arrays(rows, ep, horizon))
            scores.append(sim.score.totals().as_dict())
    finally:
        sim.close()
    data = _concat(parts)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **data)
    total = {k: sum(s[k] for s in scores) for k in ("correct", "wrong_bin", "missed", "dropped", "total")}
    return {"path": str(out), "rows": int(len(data["episode_index"])), "episodes": n_episodes, "score": total}


# ------------------------------------------------------------------ export from MCAP
def read_mcap(path) -> tuple[dict[str, list], dict[str, str]]:
    """Decode an episode: {topic: [(log_time_s, msg), ...]} and the s1s2_episode metadata."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    by_topic: dict[str, list] = {}
    meta: dict[str, str] = {}
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _schema, channel, message, decoded in reader.iter_decoded_messages():
            by_topic.setdefault(channel.topic, []).append((message.log_time * 1e-9, decoded))
        f.seek(0)
        for rec in reader.iter_metadata():
            if rec.name == "s1s2_episode":
                meta = dict(rec.metadata)
    return by_topic, meta


def _vec(p) -> list[float]:
    return [p.x, p.y, p.z]


def policy_rows_from_mcap(by_topic: dict[str, list]) -> list[dict]:
    js = by_topic.get(tp.JOINT_STATES.name, [])
    cmds = {round(t, 6): m for t, m in by_topic.get(tp.JOINT_COMMANDS.name, [])}
    suc = {round(t, 6): m for t, m in by_topic.get(tp.SUCTION_COMMAND.name, [])}
    goals = {round(t, 6): m for t, m in by_topic.get(tp.GOAL_TOPIC.name, [])}
    vac = {round(t, 6): m for t, m in by_topic.get(tp.VACUUM.name, [])}
    belt = {round(t, 6): m for t, m in by_topic.get(tp.BELT_STATE.name, [])}
    rows, prev_suction, holding, speed = [], 0.0, 0.0, 0.0
    for t, m in js:
        key = round(t, 6)
        if key in vac:
            holding = float(vac[key].data)
        if key in belt and belt[key].velocity:
            speed = float(belt[key].velocity[0])
        if key not in cmds or key not in goals:
            continue
        g = goals[key]
        has = bool(g.target_label)
        latent = np.asarray(g.latent, np.float32) if has else np.zeros(LATENT_DIM, np.float32)
        rows.append(
            {
                "q": list(m.position), "qd": list(m.velocity), "suction": prev_suction,
                "target": _vec(g.target_pose.position) if has else [0.0] * 3,
                "place": _vec(g.place_pose.position) if has else [0.0] * 3,
                "latent": latent, "has_goal": float(has), "holding": holding, "belt_speed": speed,
                # recorded targets are items on the belt: they move with it
                "target_vel": [speed, 0.0, 0.0] if has else [0.0] * 3,
                "cmd_q": list(cmds[key].data), "cmd_s": float(suc[key].data) if key in suc else prev_suction,
            }
        )  # fmt: skip
        prev_suction = rows[-1]["cmd_s"]
    return rows


def export_mcap(paths, out_dir, horizon: int = HORIZON, progress: bool = True) -> dict:
    """Turn recorded episodes into out_dir/policy.npz and out_dir/planner.npz (see module doc)."""
    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pol_parts = []
    planner: dict[str, list] = {k: [] for k in (
        "images", "instruction", "target_class", "pick_point", "bin_id", "has_target", "lighting",
        "items_json", "episode_index",
    )}  # fmt: skip
    cam_info_json = ""
    paths = sorted(Path(p) for p in paths)
    if not paths:
        raise ValueError("export: no MCAP files given")
    for ep, p in enumerate(tqdm(paths, desc="export", unit="ep", disable=not progress)):
        by_topic, meta = read_mcap(p)
        rows = policy_rows_from_mcap(by_topic)
        if rows:
            pol_parts.append(_episode_arrays(rows, ep, horizon))
        cam_info_json = meta.get("camera_info", cam_info_json)
        info = json.loads(cam_info_json) if cam_info_json else None
        goals = {round(t, 6): m for t, m in by_topic.get(tp.GOAL_TOPIC.name, [])}
        gts = {round(t, 6): m for t, m in by_topic.get(tp.GROUND_TRUTH.name, [])}
        for t, img in by_topic.get(tp.CAMERA_IMAGE.name, []):
            key = round(t, 6)
            g = goals.get(key)
            arr = np.frombuffer(bytes(img.data), np.uint8).reshape(img.height, img.width, 3)
            planner["images"].append(arr)
            has = bool(g is not None and g.target_label)
            planner["instruction"].append(g.instruction if g is not None else "")
            planner["target_class"].append(g.target_label if has else "")
            planner["pick_point"].append(_vec(g.target_pose.position) if has else [0.0] * 3)
            planner["bin_id"].append(g.bin_id if has else "")
            planner["has_target"].append(float(has))
            planner["lighting"].append(meta.get("lighting_domain", ""))
            planner["episode_index"].append(ep)
            items = []
            if key in gts:
                for it in gts[key].items:
                    pos = _vec(it.pose.position)
                    items.append({"item_id": it.item_id, "class": it.class_label, "bin": it.bin_id,
                                  "position": pos, "on_belt": it.on_belt, "grasped": it.grasped,
                                  "pixel": _project(info, pos) if info else None})  # fmt: skip
            planner["items_json"].append(json.dumps(items))
    result = {"episodes": len(paths)}
    if pol_parts:
        data = _concat(pol_parts)
        np.savez_compressed(out / "policy.npz", **data)
        result["policy"] = {"path": str(out / "policy.npz"), "rows": int(len(data["episode_index"]))}
    if planner["images"]:
        np.savez_compressed(
            out / "planner.npz",
            images=np.stack(planner["images"]),
            instruction=np.array(planner["instruction"]),
            target_class=np.array(planner["target_class"]),
            pick_point=np.array(planner["pick_point"], np.float32),
            bin_id=np.array(planner["bin_id"]),
            has_target=np.array(planner["has_target"], np.float32),
            lighting=np.array(planner["lighting"]),
            items_json=np.array(planner["items_json"]),
            episode_index=np.array(planner["episode_index"], np.int64),
            camera_info_json=np.array(cam_info_json),
        )
        result["planner"] = {"path": str(out / "planner.npz"), "rows": len(planner["images"])}
    return result


def _project(info: dict, p) -> list[float]:
    k = np.asarray(info["K"])
    rot = np.asarray(info["rotation"])
    pc = (np.asarray(p) - np.asarray(info["position"])) @ rot
    uvw = k @ pc
    return [float(uvw[0] / uvw[2]), float(uvw[1] / uvw[2])]


__all__ = ["make_policy_dataset", "export_mcap", "read_mcap", "HORIZON", "DEFAULT_CELL"]
