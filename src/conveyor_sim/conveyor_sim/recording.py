"""Record expert episodes as MCAP files (rosbag2's storage format: profile "ros2", schemas are the
full ROS 2 message definitions, messages CDR-encoded), straight from the sim core (no DDS).

The topics and types are the ones the `conveyor_sim` node publishes (s1s2.topics), plus the
expert's commands on /joint_commands and /suction_command (what the stack's System 1 publishes)
and the expert's oracle target on /system2/goal (frame "world", one per control tick).
`ros2 bag info/play` read these files; so does any mcap + mcap_ros2 reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mcap_ros2.writer import Writer

from conveyor_sim import messages as mm
from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver
from conveyor_sim.lighting import DOMAINS, get_domain
from s1s2 import topics as tp
from s1s2.mcap_io import message_definition
from s1s2.topics import CONTROL_DT

OPERATOR_INSTRUCTION = "sort the waste on the belt into the right bins"
RECORDED_TOPICS = [
    tp.CAMERA_IMAGE,
    tp.CAMERA_INFO,
    tp.JOINT_STATES,
    tp.BELT_STATE,
    tp.GROUND_TRUTH,
    tp.SORT_EVENTS,
    tp.JOINT_COMMANDS,
    tp.SUCTION_COMMAND,
    tp.VACUUM,
    tp.GOAL_TOPIC,
]


@dataclass(frozen=True)
class RecordRates:
    camera_hz: float = 10.0
    ground_truth_hz: float = 10.0
    # joint states, belt state, commands and goal go at the control rate (50 Hz)


def _every(hz: float) -> int:
    return max(1, int(round(1.0 / (hz * CONTROL_DT))))


def _ns(t: float) -> int:
    return int(round(t * 1e9))


class McapEpisodeWriter:
    """One MCAP file with the recorded topics registered."""

    def __init__(self, path: Path):
        self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.writer = Writer(self._f)
        self.schemas = {}
        for topic in RECORDED_TOPICS:
            if topic.type not in self.schemas:
                self.schemas[topic.type] = self.writer.register_msgdef(
                    topic.type, message_definition(topic.type)
                )

    def write(self, topic: tp.Topic, msg: dict, t: float) -> None:
        self.writer.write_message(
            topic.name, self.schemas[topic.type], msg, log_time=_ns(t), publish_time=_ns(t)
        )

    def metadata(self, name: str, data: dict) -> None:
        self.writer.add_metadata(name, {k: str(v) for k, v in data.items()})

    def close(self) -> None:
        self.writer.finish()
        self._f.close()


def record_episode(
    sim: CellSim,
    driver: ExpertDriver,
    path: Path,
    duration_s: float,
    rates: RecordRates = RecordRates(),
    camera: bool = True,
) -> dict:
    """Run the expert for `duration_s` from the sim's current state and write one MCAP file."""
    w = McapEpisodeWriter(path)
    names = sim.desc.arm.joint_names
    cls_names = sim.desc.class_names
    cam_every, gt_every = _every(rates.camera_hz), _every(rates.ground_truth_hz)
    n_ticks = int(round(duration_s / CONTROL_DT))
    t0 = sim.time
    plan_seq = 0
    try:
        for k in range(n_ticks):
            t = sim.time
            w.write(
                tp.JOINT_STATES, mm.joint_state(names, sim.joint_positions(), sim.joint_velocities(), t), t
            )
            w.write(tp.BELT_STATE, mm.joint_state(["belt"], [sim.belt_position()], [sim.belt_speed], t), t)
            if k % gt_every == 0:
                w.write(
                    tp.GROUND_TRUTH,
                    mm.ground_truth(sim.ground_truth(), sim.belt_position(), t, tp.WORLD_FRAME),
                    t,
                )
            if camera and k % cam_every == 0:
                info = sim.camera_info()
                w.write(tp.CAMERA_IMAGE, mm.image(sim.render(), t, info.frame_id), t)
                w.write(tp.CAMERA_INFO, mm.camera_info(info, t), t)
            w.write(tp.VACUUM, mm.bool_msg(sim.holding() is not None), t)
            act = driver.compute()
            g = driver.last_goal
            plan_seq += 1
            w.write(
                tp.GOAL_TOPIC,
                mm.goal(
                    t, f"oracle-{plan_seq}", g.label or "", g.pick_world, g.place_world, g.bin_id or "",
                    g.latent, OPERATOR_INSTRUCTION,
                ),
                t,
            )  # fmt: skip
            w.write(tp.JOINT_COMMANDS, mm.float64_multiarray(act.q), t)
            w.write(tp.SUCTION_COMMAND, mm.bool_msg(act.suction), t)
            driver.apply(act)
            sim.step(CONTROL_DT)
            for ev in sim.pop_events():
                w.write(tp.SORT_EVENTS, mm.sort_event(ev, tp.WORLD_FRAME), ev.time)
        meta = {
            "seed": sim.seed,
            "lighting_domain": sim.lighting,
            "duration_s": duration_s,
            "start_time": t0,
            "control_dt": CONTROL_DT,
            "camera_hz": rates.camera_hz if camera else 0,
            "joint_names": json.dumps(names),
            "class_names": json.dumps(cls_names),
            "camera_info": json.dumps(sim.camera_info().as_dict()),
            "latent": "conveyor_sim.oracle.goal_latent: one-hot of the target class (class_names order), zero-padded to 32",
        }
        w.metadata("s1s2_episode", meta)
    finally:
        w.close()
    return {"path": str(path), **sim.score.as_dict()["totals"]}


def record_episodes(
    n_episodes: int,
    out_dir,
    seed: int = 0,
    episode_s: float = 30.0,
    domains: list[str] | None = None,
    camera: bool = True,
    width: int = 320,
    height: int = 240,
    rates: RecordRates = RecordRates(),
    progress: bool = True,
) -> list[Path]:
    """Record `n_episodes` expert episodes to out_dir/episode_NNNN.mcap. Episode i uses seed
    `seed + i` and lighting domain `domains[i % len(domains)]` (default: all domains)."""
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes!r}")
    doms = list(domains) if domains else list(DOMAINS)
    for d in doms:
        get_domain(d)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = CellSim(SimConfig(seed=seed, camera_width=width, camera_height=height, render_enabled=camera))
    driver = ExpertDriver(sim, CONTROL_DT)
    paths = []
    try:
        from tqdm import tqdm

        for i in tqdm(range(n_episodes), desc="record", unit="ep", disable=not progress):
            sim.reset(seed + i)
            sim.set_lighting(doms[i % len(doms)])
            driver.reset()
            p = out / f"episode_{i:04d}.mcap"
            record_episode(sim, driver, p, episode_s, rates, camera)
            paths.append(p)
    finally:
        sim.close()
    return paths
