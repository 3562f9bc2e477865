"""`s1s2 sim bench`: real-time factor of the cell (physics + scripted expert, with and without the
camera) and render time per frame. Timings on a shared machine are noisy: read them as a range."""

from __future__ import annotations

import time

import numpy as np

from conveyor_sim.cell import CellSim, SimConfig
from conveyor_sim.expert import ExpertDriver
from s1s2.topics import CONTROL_DT


def run_bench(
    seconds: float = 20.0,
    width: int = 320,
    height: int = 240,
    camera_hz: float = 10.0,
    seed: int = 0,
    lighting: str = "daylight",
) -> dict:
    """Simulate `seconds` twice (camera off, camera on at `camera_hz`) with the expert driving."""
    out = {"sim_seconds": seconds, "width": width, "height": height, "camera_hz": camera_hz}
    for camera in (False, True):
        sim = CellSim(SimConfig(seed=seed, lighting=lighting, camera_width=width, camera_height=height,
                                render_enabled=camera))  # fmt: skip
        drv = ExpertDriver(sim, CONTROL_DT)
        every = max(1, int(round(1.0 / (camera_hz * CONTROL_DT))))
        if camera:
            sim.render()  # create the GL context outside the timing
        render_ms, step_s = [], 0.0
        t0 = time.perf_counter()
        for k in range(int(round(seconds / CONTROL_DT))):
            ts = time.perf_counter()
            drv.tick()
            sim.step(CONTROL_DT)
            step_s += time.perf_counter() - ts
            if camera and k % every == 0:
                tr = time.perf_counter()
                sim.render()
                render_ms.append(1000 * (time.perf_counter() - tr))
        wall = time.perf_counter() - t0
        key = "camera" if camera else "no_camera"
        out[key] = {
            "real_time_factor": seconds / wall,
            "wall_s": wall,
            "physics_expert_ms_per_tick": 1000 * step_s / (seconds / CONTROL_DT),
        }
        if camera:
            out[key]["render_ms_mean"] = float(np.mean(render_ms))
            out[key]["render_ms_p95"] = float(np.percentile(render_ms, 95))
        sim.close()
    return out


def format_bench(r: dict) -> str:
    lines = [
        f"conveyor_sim bench: {r['sim_seconds']:.0f} simulated s, expert driving, physics 500 Hz, control 50 Hz",
        f"  real-time factor, camera off: {r['no_camera']['real_time_factor']:.2f}x "
        f"({r['no_camera']['physics_expert_ms_per_tick']:.2f} ms per 20 ms tick)",
        f"  real-time factor, camera on ({r['width']}x{r['height']} @ {r['camera_hz']:g} Hz): "
        f"{r['camera']['real_time_factor']:.2f}x",
        f"  render ms/frame: mean {r['camera']['render_ms_mean']:.2f}, p95 {r['camera']['render_ms_p95']:.2f}",
    ]
    return "\n".join(lines)
