"""The conveyor cell simulation core (MuJoCo; no rclpy).

    from conveyor_sim.cell import CellSim, SimConfig
    sim = CellSim(SimConfig(seed=0, lighting="daylight", camera_width=320, camera_height=240))
    sim.step(0.02); img = sim.render(); sim.ground_truth(); sim.close()

`CellSim` coordinates the parts: the physics (one MjModel/MjData, the belt, the arm's joint
servos), the items and the suction cup (conveyor_sim.items.ItemPool), the scoring
(conveyor_sim.scoring) and the overhead camera with the scene lighting (conveyor_sim.camera).
It is not thread-safe: the ROS node serialises access with a lock and renders from one thread.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from conveyor_sim import mjcf
from conveyor_sim.camera import CameraInfo, OverheadCamera, apply_lighting
from conveyor_sim.config import SimConfig
from conveyor_sim.items import ItemPool, ItemTruth
from conveyor_sim.lighting import DOMAINS, LightingDomain, get_domain
from conveyor_sim.scoring import CORRECT, DROPPED, MISSED, WRONG_BIN, Scoreboard, SortEventRecord
from s1s2.cell import DEFAULT_CELL, CellDescription


class CellSim:
    """The recycling cell. See module docstring for the API."""

    def __init__(self, config: SimConfig | None = None, description: CellDescription = DEFAULT_CELL):
        self.config = config or SimConfig()
        self.desc = description
        cfg, cam = self.config, description.camera
        self._width = cfg.camera_width or cam.width
        self._height = cfg.camera_height or cam.height
        classes = [description.item_class(c) for c in cfg.classes(description)]
        self.xml = mjcf.build_mjcf(
            description,
            physics_dt=cfg.physics_dt,
            pool_per_class=cfg.pool_per_class,
            render_width=self._width,
            render_height=self._height,
        )
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        m = self.model
        arm = description.arm
        self._jq = np.array(
            [m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in arm.joint_names]
        )
        self._jv = np.array(
            [m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in arm.joint_names]
        )
        self._act = np.array(
            [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, f"act_{n}") for n in arm.joint_names]
        )
        self._tip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "suction_tip")
        self._lo, self._hi = arm.lower_limits(), arm.upper_limits()
        self._vmax = arm.velocity_limits()
        self.items = ItemPool(m, self.data, description, classes, cfg.pool_per_class)
        self.camera = OverheadCamera(
            m,
            self.data,
            description,
            self._width,
            self._height,
            cfg.camera_fovy_deg or cam.fovy_deg,
            cfg.seed,
        )
        self.command_stats = {"accepted": 0, "clamped": 0, "rejected_nonfinite": 0, "rejected_length": 0}
        self.reset(cfg.seed)
        self.set_lighting(cfg.lighting)

    # ------------------------------------------------------------------ state
    def reset(self, seed: int | None = None) -> None:
        """Clear all items, home the arm, zero the belt odometry and clocks, reseed the spawner."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed must be a non-negative int, got {seed!r}")
            self.seed = int(seed)
        else:
            self.seed = self.config.seed
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        # MuJoCo's auto-resets since this reset (its own warning counters are wiped by each one)
        self.physics_resets = 0
        self._belt_speed = self.config.belt_speed if self.config.belt_speed >= 0 else self.desc.belt.speed
        self.items.reset(np.random.default_rng(self.seed), self._belt_speed)
        self.camera.reseed(self.seed)
        home = self.desc.arm.home()
        d.qpos[self._jq] = home
        d.ctrl[self._act] = home
        self._q_target = home.copy()
        self._q_ref = home.copy()
        self._suction = False
        self._belt_pos = 0.0
        self._t = 0.0
        self._dt_acc = 0.0
        self._next_spawn = 0.5 if self.config.spawn_interval_s > 0 else math.inf
        self._events: list[SortEventRecord] = []
        self._event_cursor = 0
        self.score = Scoreboard()
        mujoco.mj_forward(m, d)
        self._tip_prev = d.site_xpos[self._tip].copy()

    @property
    def time(self) -> float:
        return self._t

    @property
    def lighting(self) -> str:
        return self._domain.name

    @property
    def lighting_domain(self) -> LightingDomain:
        return self._domain

    @property
    def belt_speed(self) -> float:
        return self._belt_speed

    def set_belt_speed(self, speed: float) -> None:
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and 0.0 <= speed <= 1.0):
            raise ValueError(f"belt speed must be in [0, 1] m/s, got {speed!r}")
        self._belt_speed = float(speed)
        self.items.set_belt_speed(self._belt_speed)

    def belt_position(self) -> float:
        return self._belt_pos

    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._jq].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._jv].copy()

    def joint_targets(self) -> np.ndarray:
        """Last accepted (possibly clamped) joint command."""
        return self._q_target.copy()

    def tip_position(self) -> np.ndarray:
        return self.data.site_xpos[self._tip].copy()

    @property
    def suction(self) -> bool:
        return self._suction

    def holding(self) -> str | None:
        """item_id held by the suction cup, or None (the vacuum sensor of a real gripper)."""
        it = self.items.holding()
        return it.item_id if it is not None else None

    @property
    def spawn_times(self) -> list[float]:
        return self.items.spawn_times

    @property
    def spawn_skipped(self) -> int:
        return self.items.spawn_skipped

    # --------------------------------------------------------------- commands
    def command_joints(self, q) -> str:
        """Set the arm's joint position targets (4 values, description order).

        Returns "ok", "clamped" (out-of-limit values clamped to the limits), "rejected_length" or
        "rejected_nonfinite"; rejected commands are never applied. Every outcome is counted in
        `command_stats`. Never raises for bad values.
        """
        try:
            arr = np.asarray(q, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            self.command_stats["rejected_length"] += 1
            return "rejected_length"
        if arr.shape != (len(self._jq),):
            self.command_stats["rejected_length"] += 1
            return "rejected_length"
        if not np.all(np.isfinite(arr)):
            self.command_stats["rejected_nonfinite"] += 1
            return "rejected_nonfinite"
        clipped = np.clip(arr, self._lo, self._hi)
        self._q_target = clipped
        if np.any(clipped != arr):
            self.command_stats["clamped"] += 1
            return "clamped"
        self.command_stats["accepted"] += 1
        return "ok"

    def set_suction(self, on: bool) -> None:
        self._suction = bool(on)
        if not self._suction:
            self.items.release_all()

    def set_lighting(self, domain: str | LightingDomain) -> None:
        """Switch lighting: a named domain (UnknownDomainError, a ValueError, lists the valid ones)
        or any LightingDomain, e.g. `lighting.custom_domain(intensity=2.0, colour_temp_k=9000)`."""
        dom = domain if isinstance(domain, LightingDomain) else get_domain(domain)
        apply_lighting(self.model, self.data, self.desc, dom)
        self._domain = dom

    # ---------------------------------------------------------------- physics
    def step(self, dt: float) -> None:
        """Advance the simulation by dt seconds (rounded to whole physics steps, remainder carried)."""
        if not (math.isfinite(dt) and dt >= 0.0):
            raise ValueError(f"dt must be a finite, non-negative number of seconds, got {dt!r}")
        pdt = self.config.physics_dt
        self._dt_acc += dt
        n = int(self._dt_acc / pdt + 1e-9)
        self._dt_acc -= n * pdt
        # Book-keeping (spawn, belt contact, scoring, suction) runs every `chunk` physics steps (~10 ms).
        chunk = max(1, int(round(0.01 / pdt)))
        while n > 0:
            k = min(chunk, n)
            for _ in range(k):
                self._substep(pdt)
            n -= k
            self._bookkeeping(k * pdt)

    def _substep(self, pdt: float) -> None:
        m, d = self.model, self.data
        # Joint reference follows the command at no more than the joint speed limits.
        self._q_ref += np.clip(self._q_target - self._q_ref, -self._vmax * pdt, self._vmax * pdt)
        d.ctrl[self._act] = self._q_ref
        tip = d.site_xpos[self._tip]
        tip_vel = (tip - self._tip_prev) / pdt
        self._tip_prev = tip.copy()
        self.items.drive(tip, tip_vel)
        t_before = d.time
        mujoco.mj_step(m, d)
        if d.time < t_before:  # MuJoCo found the state unstable and reset it (mj_resetData)
            self.physics_resets += 1
        self._t += pdt
        self._belt_pos += self._belt_speed * pdt

    def _bookkeeping(self, elapsed: float) -> None:
        self.score.add_time(self._domain.name, elapsed)
        for it in self.items.update_states(self._t):
            self._check_outcome(it)
        # An item is scored under the light it was presented to the arm in: the light while it lay
        # on the belt upstream of the arm's base. A missed item leaves play about 10 s after passing
        # the arm; scored then, a shift day counted it under the next light.
        line = self.desc.arm.base[0]
        for it in self.items.items:
            if it.state == "belt" and self.items.position(it)[0] <= line:
                it.presented_in = self._domain.name
        if self._suction and self.items.holding() is None:
            self.items.try_attach(self.data.site_xpos[self._tip])
        if self._t >= self._next_spawn:
            cfg = self.config
            self._next_spawn = self.items.spawn_random(self._t, cfg.spawn_jitter, cfg.spawn_interval_s)

    def _check_outcome(self, it) -> None:
        belt = self.desc.belt
        pos = self.items.position(it)
        for b in self.desc.bins:
            sx, sy, sz = b.size
            if abs(pos[0] - b.center[0]) < sx / 2 and abs(pos[1] - b.center[1]) < sy / 2 and pos[2] < sz:
                outcome = CORRECT if b.bin_id == it.slot.cls.bin_id else WRONG_BIN
                self._score(it, outcome, b.bin_id)
                return
        if pos[2] < belt.surface_height - 0.05:
            if pos[0] > belt.length / 2:
                self._score(it, MISSED, "")
            elif pos[2] < 0.1:
                self._score(it, DROPPED, "")

    def _score(self, it, outcome: int, bin_id: str) -> None:
        self.items.mark_scored(it, self._t)
        ev = SortEventRecord(
            time=self._t,
            item_id=it.item_id,
            class_label=it.slot.cls.name,
            bin_id=bin_id,
            outcome=outcome,
            correct=outcome == CORRECT,
            lighting_domain=it.presented_in or self._domain.name,
        )
        self._events.append(ev)
        self.score.add_event(ev)

    def pop_events(self) -> list[SortEventRecord]:
        """Sort events since the last call."""
        new = self._events[self._event_cursor :]
        self._event_cursor = len(self._events)
        return new

    @property
    def events(self) -> list[SortEventRecord]:
        return list(self._events)

    # ----------------------------------------------------------------- items
    def spawn_item(self, class_name: str, x=None, y: float = 0.0, yaw: float = 0.0, scale: float = 1.0,
                   colour=None) -> str | None:  # fmt: skip
        """Put one item of `class_name` on the belt (x defaults to the upstream end). Returns its
        item_id, or None when that class's pool is exhausted. Used by the spawner and by tests."""
        return self.items.spawn_item(class_name, self._t, x, y, yaw, scale, colour)

    def ground_truth(self) -> list[ItemTruth]:
        """Every item in play (scored items that are about to disappear are left out)."""
        return self.items.ground_truth()

    # ---------------------------------------------------------------- camera
    def camera_info(self) -> CameraInfo:
        return self.camera.info()

    def render(self, lock=None, on_snapshot=None) -> np.ndarray:
        """Overhead camera image, HxWx3 uint8 RGB, developed under the current lighting domain.

        `lock` (optional) is held only while the scene is read from the physics state, so a
        caller stepping physics in another thread is not stalled for the whole render. The GL
        context belongs to the first thread that renders; render from that thread only.
        """
        if not self.config.render_enabled:
            raise RuntimeError("rendering is disabled (SimConfig.render_enabled=False)")
        if lock is not None:
            with lock:
                t, dom = self._t, self._domain
        else:
            t, dom = self._t, self._domain
        return self.camera.render(dom, t, lock, on_snapshot)

    def close(self) -> None:
        self.camera.close()

    def __enter__(self) -> CellSim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CellSim", "SimConfig", "ItemTruth", "CameraInfo", "DOMAINS"]
