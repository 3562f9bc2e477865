"""Headless expert runs over a "shift day" of lighting domains, with a score table and a video.

from conveyor_sim.evaluation import run_expert_shift
r = run_expert_shift(duration_s=240, seed=0, out_dir="runs/x")
print(r["table"]); r["domains"]["night_noise"]["accuracy"]; r["video"], r["strip"]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver
from conveyor_sim.lighting import ShiftSchedule
from s1s2.topics import CONTROL_DT


def run_expert_shift(
    duration_s: float,
    seed: int,
    out_dir,
    domains: list[str] | None = None,
    video: bool = True,
    fps: float = 10.0,
    width: int = 320,
    height: int = 240,
    progress: bool = True,
) -> dict:
    """Run the scripted expert for `duration_s` simulated seconds (as fast as the CPU allows)
    through equal slices of `domains` (default: every lighting domain).

    Returns {"domains": {name: {correct, wrong_bin, missed, dropped, total, accuracy, time_s,
    throughput_per_min}}, "totals": {...}, "table": str, "video": path|None, "strip": path|None,
    "schedule": [[domain, seconds], ...], "seed", "duration_s", "wall_s", "real_time_factor"}.
    """
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    schedule = ShiftSchedule.shift_day(duration_s, domains)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sim = CellSim(SimConfig(seed=seed, lighting=schedule.domain_at(0.0), camera_width=width,
                            camera_height=height, render_enabled=video))  # fmt: skip
    drv = ExpertDriver(sim, CONTROL_DT)
    frame_every = max(1, int(round(1.0 / (fps * CONTROL_DT))))
    n_ticks = int(round(duration_s / CONTROL_DT))
    writer = None
    video_path = strip_path = None
    strip: dict[str, np.ndarray] = {}
    mids = {}
    acc = 0.0
    for name, dur in schedule.segments:
        mids.setdefault(name, acc + dur / 2)
        acc += dur
    t_wall = time.perf_counter()
    try:
        if video:
            import imageio.v2 as imageio

            video_path = out / "expert_shift.mp4"
            writer = imageio.get_writer(video_path, fps=fps, codec="libx264", quality=6, macro_block_size=8)
        from tqdm import tqdm

        for k in tqdm(
            range(n_ticks), desc="expert shift", unit="tick", disable=not progress, mininterval=1.0
        ):
            dom = schedule.domain_at(sim.time)
            if dom != sim.lighting:
                sim.set_lighting(dom)
            drv.tick()
            sim.step(CONTROL_DT)
            if writer is not None and k % frame_every == 0:
                img = sim.render()
                writer.append_data(img)
                if dom not in strip and sim.time >= mids[dom]:
                    strip[dom] = img
    finally:
        if writer is not None:
            writer.close()
        sim.close()
    wall = time.perf_counter() - t_wall
    if strip:
        import imageio.v2 as imageio

        strip_path = out / "expert_strip.png"
        imageio.imwrite(strip_path, np.concatenate(list(strip.values()), axis=1))
    scores = sim.score.as_dict()
    return {
        "domains": scores["domains"],
        "totals": scores["totals"],
        "table": sim.score.table(),
        "video": str(video_path) if video_path else None,
        "strip": str(strip_path) if strip_path else None,
        "schedule": [list(s) for s in schedule.segments],
        "seed": seed,
        "duration_s": duration_s,
        "wall_s": round(wall, 2),
        "real_time_factor": round(duration_s / wall, 2) if wall > 0 else None,
    }
