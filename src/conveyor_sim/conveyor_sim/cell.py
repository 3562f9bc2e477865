"""The conveyor cell simulation core (MuJoCo; no rclpy).

    from conveyor_sim.cell import CellSim, SimConfig
    sim = CellSim(SimConfig(seed=0, lighting="daylight", camera_width=320, camera_height=240))
    sim.step(0.02); img = sim.render(); sim.ground_truth(); sim.close()

One CellSim owns one MjModel/MjData and (lazily) one offscreen renderer. It is not thread-safe:
the ROS node serialises access with a lock and renders from a single thread.
"""

from __future__ import annotations

import atexit
import math
import threading
import weakref
from dataclasses import dataclass, field

import mujoco
import numpy as np

from conveyor_sim import mjcf
from conveyor_sim.description import DEFAULT_CELL, CellDescription, ItemClassSpec
from conveyor_sim.lighting import DOMAINS, LightingDomain, develop, get_domain
from conveyor_sim.scoring import CORRECT, DROPPED, MISSED, WRONG_BIN, Scoreboard, SortEventRecord

# Seconds an item stays visible after it was scored (in a bin, on the floor) before its body
# returns to the pool.
_DESPAWN_AFTER_S = 1.5
# Suction attaches when the cup tip is this close to an item's top surface.
_SUCTION_Z_TOL = (-0.03, 0.02)  # tip z minus item top z: (below, above)
_SUCTION_XY_MARGIN = 0.01


@dataclass
class SimConfig:
    """Configuration of one simulated cell. Validated on construction (bad value named)."""

    seed: int = 0
    lighting: str = "daylight"
    camera_width: int = 320
    camera_height: int = 240
    camera_fovy_deg: float | None = None  # None: the description's value
    physics_dt: float = 0.002
    belt_speed: float | None = None  # m/s; None: the description's nominal speed
    spawn_interval_s: float = 4.0  # mean time between items; 0 disables the spawner
    spawn_jitter: float = 0.3  # +- fraction of the interval
    item_classes: tuple[str, ...] | None = None  # None: every class in the description
    pool_per_class: int = 6  # simultaneous items of one class
    render_enabled: bool = True

    def __post_init__(self):
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"SimConfig.seed must be a non-negative int, got {self.seed!r}")
        get_domain(self.lighting)
        for name in ("camera_width", "camera_height"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not 16 <= v <= 4096:
                raise ValueError(f"SimConfig.{name} must be an int in [16, 4096], got {v!r}")
        if self.camera_fovy_deg is not None and not 5.0 <= self.camera_fovy_deg <= 170.0:
            raise ValueError(f"SimConfig.camera_fovy_deg must be in [5, 170], got {self.camera_fovy_deg!r}")
        if not (isinstance(self.physics_dt, float) and 1e-4 <= self.physics_dt <= 0.01):
            raise ValueError(f"SimConfig.physics_dt must be in [1e-4, 0.01] s, got {self.physics_dt!r}")
        if self.belt_speed is not None and not (
            math.isfinite(self.belt_speed) and 0.0 <= self.belt_speed <= 1.0
        ):
            raise ValueError(f"SimConfig.belt_speed must be in [0, 1] m/s, got {self.belt_speed!r}")
        if not (math.isfinite(self.spawn_interval_s) and self.spawn_interval_s >= 0.0):
            raise ValueError(f"SimConfig.spawn_interval_s must be >= 0, got {self.spawn_interval_s!r}")
        if not 0.0 <= self.spawn_jitter < 1.0:
            raise ValueError(f"SimConfig.spawn_jitter must be in [0, 1), got {self.spawn_jitter!r}")
        if not 1 <= self.pool_per_class <= 50:
            raise ValueError(f"SimConfig.pool_per_class must be in [1, 50], got {self.pool_per_class!r}")
        if self.item_classes is not None:
            self.item_classes = tuple(self.item_classes)
            valid = DEFAULT_CELL.class_names
            for c in self.item_classes:
                if c not in valid:
                    raise ValueError(
                        f"SimConfig.item_classes: unknown class {c!r}; valid: {', '.join(valid)}"
                    )
            if not self.item_classes:
                raise ValueError("SimConfig.item_classes must not be empty (use None for all classes)")


@dataclass
class ItemTruth:
    """Ground truth of one item (world frame)."""

    item_id: str
    class_label: str
    bin_id: str
    position: np.ndarray  # (3,)
    quaternion: np.ndarray  # (4,) w, x, y, z
    velocity: np.ndarray  # (3,)
    size: np.ndarray  # (3,) bounding box, resting frame
    pick_point: np.ndarray  # (3,) top centre: where the suction cup should touch
    on_belt: bool
    grasped: bool

    def as_dict(self) -> dict:
        return {
            "item_id": self.item_id,
            "class_label": self.class_label,
            "bin_id": self.bin_id,
            "position": self.position.tolist(),
            "quaternion": self.quaternion.tolist(),
            "velocity": self.velocity.tolist(),
            "size": self.size.tolist(),
            "pick_point": self.pick_point.tolist(),
            "on_belt": self.on_belt,
            "grasped": self.grasped,
        }


@dataclass
class CameraInfo:
    """Pinhole model of the overhead camera. The optical frame follows ROS (x right, y down,
    z forward); `rotation` maps optical-frame vectors to world, `position` is the centre in world."""

    width: int
    height: int
    K: np.ndarray  # (3, 3)
    frame_id: str
    position: np.ndarray  # (3,)
    rotation: np.ndarray  # (3, 3) world_from_optical

    def project(self, points_world) -> np.ndarray:
        """Pixel coordinates (u, v) of world points (N, 3) -> (N, 2); u right, v down."""
        p = np.atleast_2d(np.asarray(points_world, dtype=float))
        pc = (p - self.position) @ self.rotation  # world -> optical
        uvw = pc @ self.K.T
        return uvw[:, :2] / uvw[:, 2:3]

    def pixel_to_plane(self, u: float, v: float, z: float) -> np.ndarray:
        """World point where the ray through pixel (u, v) meets the horizontal plane at height z."""
        ray_c = np.linalg.solve(self.K, np.array([u, v, 1.0]))
        ray_w = self.rotation @ ray_c
        s = (z - self.position[2]) / ray_w[2]
        return self.position + s * ray_w

    def as_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "K": self.K.tolist(),
            "frame_id": self.frame_id,
            "position": self.position.tolist(),
            "rotation": self.rotation.tolist(),
        }


@dataclass
class _Slot:
    cls: ItemClassSpec
    body: int
    geom: int
    qpos: int  # address of the free joint in qpos (7)
    qvel: int  # address in qvel (6)
    park: tuple[float, float, float]
    size0: np.ndarray
    mass0: float
    inertia0: np.ndarray
    rbound0: float
    aabb0: np.ndarray
    item: _Item | None = None


@dataclass
class _Item:
    item_id: str
    slot: _Slot
    scale: float
    spawn_time: float
    state: str = "belt"  # belt | grasped | free | scored
    grasp_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scored_at: float = 0.0


class CellSim:
    """The recycling cell. See module docstring for the API."""

    def __init__(self, config: SimConfig | None = None, description: CellDescription = DEFAULT_CELL):
        self.config = config or SimConfig()
        self.desc = description
        self._classes = [
            description.item_class(c) for c in (self.config.item_classes or description.class_names)
        ]
        cam = description.camera
        self._fovy = self.config.camera_fovy_deg or cam.fovy_deg
        self.xml = mjcf.build_mjcf(
            description,
            physics_dt=self.config.physics_dt,
            pool_per_class=self.config.pool_per_class,
            render_width=self.config.camera_width,
            render_height=self.config.camera_height,
        )
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._cam_id = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, cam.name)
        m.cam_fovy[self._cam_id] = self._fovy
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
        self._light_ids = [
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_LIGHT, li.name) for li in description.lights
        ]
        self._bin_geoms = {
            mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"bin_{b.bin_id}_floor"): b.bin_id
            for b in description.bins
        }
        self._slots: dict[str, list[_Slot]] = {}
        idx = 0
        for c in description.items:
            lst = []
            for k in range(self.config.pool_per_class):
                name = mjcf.item_body_name(c.name, k)
                b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
                g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)
                jnt = m.body_jntadr[b]
                lst.append(
                    _Slot(
                        c,
                        b,
                        g,
                        int(m.jnt_qposadr[jnt]),
                        int(m.jnt_dofadr[jnt]),
                        mjcf.park_position(idx),
                        m.geom_size[g].copy(),
                        float(m.body_mass[b]),
                        m.body_inertia[b].copy(),
                        float(m.geom_rbound[g]),
                        m.geom_aabb[g].copy(),
                    )
                )
                idx += 1
            self._slots[c.name] = lst
        self._renderer = None
        self._render_lock = threading.Lock()
        self.command_stats = {"accepted": 0, "clamped": 0, "rejected_nonfinite": 0, "rejected_length": 0}
        self.reset(self.config.seed)
        self.set_lighting(self.config.lighting)

    # ------------------------------------------------------------------ state
    def reset(self, seed: int | None = None) -> None:
        """Clear all items, home the arm, zero the belt odometry and clocks, reseed the spawner."""
        if seed is not None:
            if not isinstance(seed, (int, np.integer)) or seed < 0:
                raise ValueError(f"seed must be a non-negative int, got {seed!r}")
            self.seed = int(seed)
        else:
            self.seed = self.config.seed
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self._rng = np.random.default_rng(self.seed)
        self._noise_rng = np.random.default_rng([self.seed, 1])
        self._items: list[_Item] = []
        self._spawned = 0
        self.spawn_times: list[float] = []
        self.spawn_skipped = 0
        for slots in self._slots.values():
            for s in slots:
                s.item = None
                self._park(s)
        home = self.desc.arm.home()
        d.qpos[self._jq] = home
        d.ctrl[self._act] = home
        self._q_target = home.copy()
        self._q_ref = home.copy()
        self._suction = False
        self._belt_speed = (
            self.config.belt_speed if self.config.belt_speed is not None else self.desc.belt.speed
        )
        self._belt_pos = 0.0
        self._t = 0.0
        self._dt_acc = 0.0
        self._next_spawn = 0.5 if self.config.spawn_interval_s > 0 else math.inf
        self._events: list[SortEventRecord] = []
        self._event_cursor = 0
        self.score = Scoreboard()
        self._tip_prev = None
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
        for it in self._items:
            if it.state == "grasped":
                return it.item_id
        return None

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
            for it in self._items:
                if it.state == "grasped":
                    self._release(it)

    def set_lighting(self, name: str) -> None:
        """Switch lighting domain; raises UnknownDomainError (a ValueError) listing valid ones."""
        dom = get_domain(name)
        m = self.model
        rgb = dom.light_rgb()
        for i, (lid, spec) in enumerate(zip(self._light_ids, self.desc.lights, strict=True)):
            m.light_diffuse[lid] = spec.diffuse * dom.intensity * rgb
            m.light_specular[lid] = 0.1 * dom.intensity * rgb
            m.light_ambient[lid] = (dom.ambient * rgb) if i == 0 else 0.0
            if i == 0:
                dvec = np.asarray(dom.direction, dtype=float)
                m.light_dir[lid] = dvec / np.linalg.norm(dvec)
        m.vis.headlight.ambient[:] = 0.25 * dom.ambient * rgb
        m.vis.headlight.diffuse[:] = 0.05 * dom.intensity * rgb
        self._domain = dom
        mujoco.mj_kinematics(m, self.data)  # refresh light directions in data

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
        v = self._belt_speed
        for it in self._items:
            s = it.slot
            if it.state == "belt":
                d.qvel[s.qvel : s.qvel + 6] = (v, 0.0, d.qvel[s.qvel + 2], 0.0, 0.0, 0.0)
            elif it.state == "grasped":
                d.qpos[s.qpos : s.qpos + 3] = tip + it.grasp_offset
                d.qvel[s.qvel : s.qvel + 3] = tip_vel
                d.qvel[s.qvel + 3 : s.qvel + 6] = 0.0
        mujoco.mj_step(m, d)
        self._t += pdt
        self._belt_pos += v * pdt

    def _bookkeeping(self, elapsed: float) -> None:
        self.score.add_time(self._domain.name, elapsed)
        belt = self.desc.belt
        d = self.data
        for it in list(self._items):
            s = it.slot
            pos = d.qpos[s.qpos : s.qpos + 3]
            if it.state == "scored":
                if self._t - it.scored_at >= _DESPAWN_AFTER_S:
                    self._despawn(it)
                continue
            if it.state == "grasped":
                continue
            bottom = pos[2] - self._half_height_world(it)
            on_belt_area = abs(pos[0]) <= belt.length / 2 and abs(pos[1]) <= belt.width / 2
            resting = on_belt_area and abs(bottom - belt.surface_height) < 0.02
            if it.state == "belt" and not resting:
                it.state = "free"
            elif it.state == "free" and resting:
                it.state = "belt"
            if it.state == "free":
                self._check_outcome(it, pos)
        if self._suction and self.holding() is None:
            self._try_attach()
        if self._t >= self._next_spawn:
            self._spawn()

    def _check_outcome(self, it: _Item, pos: np.ndarray) -> None:
        belt = self.desc.belt
        for b in self.desc.bins:
            sx, sy, sz = b.size
            if abs(pos[0] - b.center[0]) < sx / 2 and abs(pos[1] - b.center[1]) < sy / 2 and pos[2] < sz:
                outcome = CORRECT if b.bin_id == it.slot.cls.bin_id else WRONG_BIN
                self._score(it, outcome, b.bin_id)
                return
        if pos[2] < belt.surface_height - 0.05:
            if pos[0] > belt.length / 2:
                self._score(it, MISSED, "")
            elif pos[2] < 0.1 or pos[2] < -1.0:
                self._score(it, DROPPED, "")

    def _score(self, it: _Item, outcome: int, bin_id: str) -> None:
        it.state = "scored"
        it.scored_at = self._t
        ev = SortEventRecord(
            time=self._t,
            item_id=it.item_id,
            class_label=it.slot.cls.name,
            bin_id=bin_id,
            outcome=outcome,
            correct=outcome == CORRECT,
            lighting_domain=self._domain.name,
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
    def _half_height_world(self, it: _Item) -> float:
        """Vertical half-extent of the item in its current orientation."""
        s = it.slot
        c = s.cls
        gm = self.data.geom_xmat[s.geom].reshape(3, 3)
        size = self.model.geom_size[s.geom]
        if c.shape == "sphere":
            return float(size[0])
        if c.shape == "cylinder":
            r, hl = size[0], size[1]
            az = abs(gm[2, 2])
            return float(hl * az + r * math.sqrt(max(0.0, 1.0 - az * az)))
        return float(np.abs(gm[2, :]) @ size[:3])

    def spawn_item(
        self,
        class_name: str,
        x: float | None = None,
        y: float = 0.0,
        yaw: float = 0.0,
        scale: float = 1.0,
        colour=None,
    ) -> str | None:
        """Put one item of `class_name` on the belt (x defaults to the upstream end). Returns its
        item_id, or None when that class's pool is exhausted. Used by the spawner and by tests."""
        c = self.desc.item_class(class_name)
        slot = next((s for s in self._slots[c.name] if s.item is None), None)
        if slot is None:
            self.spawn_skipped += 1
            return None
        belt = self.desc.belt
        if x is None:
            x = -belt.length / 2 + 0.12
        m, d = self.model, self.data
        g, b = slot.geom, slot.body
        m.geom_size[g] = slot.size0 * scale
        m.geom_rbound[g] = slot.rbound0 * scale
        m.geom_aabb[g] = slot.aabb0 * scale
        m.body_mass[b] = slot.mass0 * scale**3
        m.body_inertia[b] = slot.inertia0 * scale**5
        m.geom_rgba[g] = colour if colour is not None else c.colours[0]
        m.geom_contype[g] = 1
        m.geom_conaffinity[g] = 1
        m.body_gravcomp[b] = 0.0
        z = belt.surface_height + c.half_height(scale) + 0.002
        q = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
        d.qpos[slot.qpos : slot.qpos + 7] = (x, y, z, *q)
        d.qvel[slot.qvel : slot.qvel + 6] = (self._belt_speed, 0, 0, 0, 0, 0)
        item = _Item(f"item_{self._spawned:05d}", slot, float(scale), self._t)
        self._spawned += 1
        self.spawn_times.append(self._t)
        slot.item = item
        self._items.append(item)
        mujoco.mj_forward(m, d)
        return item.item_id

    def _spawn(self) -> None:
        cfg = self.config
        belt = self.desc.belt
        rng = self._rng
        interval = cfg.spawn_interval_s * (1.0 + cfg.spawn_jitter * rng.uniform(-1.0, 1.0))
        # Keep a gap at the upstream end so items never spawn into each other.
        x0 = -belt.length / 2 + 0.12
        for it in self._items:
            p = self.data.qpos[it.slot.qpos : it.slot.qpos + 3]
            if it.state == "belt" and p[0] - x0 < 0.26:
                self._next_spawn = self._t + 0.2
                return
        c = self._classes[int(rng.integers(len(self._classes)))]
        scale = 1.0 + c.size_jitter * rng.uniform(-1.0, 1.0)
        base = np.array(c.colours[int(rng.integers(len(c.colours)))])
        colour = base.copy()
        colour[:3] = np.clip(base[:3] + rng.uniform(-c.colour_jitter, c.colour_jitter, 3), 0.0, 1.0)
        margin = 0.09
        y = rng.uniform(-belt.width / 2 + margin, belt.width / 2 - margin)
        yaw = rng.uniform(-math.pi, math.pi)
        self.spawn_item(c.name, x0, y, yaw, scale, colour)
        self._next_spawn = self._t + interval

    def _park(self, s: _Slot) -> None:
        m, d = self.model, self.data
        m.geom_contype[s.geom] = 0
        m.geom_conaffinity[s.geom] = 0
        m.body_gravcomp[s.body] = 1.0
        d.qpos[s.qpos : s.qpos + 7] = (*s.park, 1.0, 0.0, 0.0, 0.0)
        d.qvel[s.qvel : s.qvel + 6] = 0.0

    def _despawn(self, it: _Item) -> None:
        self._park(it.slot)
        it.slot.item = None
        self._items.remove(it)

    def _try_attach(self) -> None:
        tip = self.data.site_xpos[self._tip]
        best, best_d = None, math.inf
        for it in self._items:
            if it.state not in ("belt", "free"):
                continue
            s = it.slot
            pos = self.data.qpos[s.qpos : s.qpos + 3]
            top = pos[2] + self._half_height_world(it)
            dz = tip[2] - top
            if not _SUCTION_Z_TOL[0] <= dz <= _SUCTION_Z_TOL[1]:
                continue
            reach = 0.5 * min(it.slot.cls.bbox(it.scale)[:2]) + _SUCTION_XY_MARGIN
            dxy = math.hypot(tip[0] - pos[0], tip[1] - pos[1])
            if dxy <= reach and dxy < best_d:
                best, best_d = it, dxy
        if best is not None:
            pos = self.data.qpos[best.slot.qpos : best.slot.qpos + 3]
            best.grasp_offset = pos - tip
            best.state = "grasped"
            # Carried items are kinematic: no gravity, no contacts (pushing a kinematic body
            # through others would make the solver blow up).
            self.model.body_gravcomp[best.slot.body] = 1.0
            self.model.geom_contype[best.slot.geom] = 0
            self.model.geom_conaffinity[best.slot.geom] = 0

    def _release(self, it: _Item) -> None:
        it.state = "free"
        self.model.body_gravcomp[it.slot.body] = 0.0
        self.model.geom_contype[it.slot.geom] = 1
        self.model.geom_conaffinity[it.slot.geom] = 1

    def ground_truth(self) -> list[ItemTruth]:
        """Every item in play (scored items that are about to disappear are left out)."""
        out = []
        d = self.data
        for it in self._items:
            if it.state == "scored":
                continue
            s = it.slot
            pos = d.qpos[s.qpos : s.qpos + 3].copy()
            hh = self._half_height_world(it)
            out.append(
                ItemTruth(
                    item_id=it.item_id,
                    class_label=s.cls.name,
                    bin_id=s.cls.bin_id,
                    position=pos,
                    quaternion=d.qpos[s.qpos + 3 : s.qpos + 7].copy(),
                    velocity=d.qvel[s.qvel : s.qvel + 3].copy(),
                    size=np.array(s.cls.bbox(it.scale)),
                    pick_point=pos + np.array([0.0, 0.0, hh]),
                    on_belt=it.state == "belt",
                    grasped=it.state == "grasped",
                )
            )
        return out

    # ---------------------------------------------------------------- camera
    def camera_info(self) -> CameraInfo:
        w, h = self.config.camera_width, self.config.camera_height
        f = (h / 2.0) / math.tan(math.radians(self._fovy) / 2.0)
        k_mat = np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]])
        # MuJoCo camera frame: x right, y up, looking along -z. ROS optical: x right, y down, z forward.
        cam_rot = self.data.cam_xmat[self._cam_id].reshape(3, 3)
        rotation = cam_rot @ np.diag([1.0, -1.0, -1.0])
        return CameraInfo(w, h, k_mat, "camera_optical", self.data.cam_xpos[self._cam_id].copy(), rotation)

    def render(self, lock: threading.Lock | None = None) -> np.ndarray:
        """Overhead camera image, HxWx3 uint8 RGB, developed under the current lighting domain.

        `lock` (optional) is held only while the scene is read from the physics state, so a
        caller stepping physics in another thread is not stalled for the whole render. The GL
        context belongs to the first thread that renders; render from that thread only.
        """
        if not self.config.render_enabled:
            raise RuntimeError("rendering is disabled (SimConfig.render_enabled=False)")
        with self._render_lock:
            if self._renderer is None:
                self._renderer = mujoco.Renderer(
                    self.model, self.config.camera_height, self.config.camera_width
                )
                # Free the GL context before the interpreter tears EGL down (else noisy errors at exit).
                self._atexit = _closer(weakref.ref(self))
                atexit.register(self._atexit)
            if lock is not None:
                with lock:
                    self._renderer.update_scene(self.data, camera=self._cam_id)
                    t, dom = self._t, self._domain
            else:
                self._renderer.update_scene(self.data, camera=self._cam_id)
                t, dom = self._t, self._domain
            raw = self._renderer.render()
            return develop(raw, dom, self._noise_rng, t)

    def close(self) -> None:
        with self._render_lock:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
                atexit.unregister(self._atexit)

    def __enter__(self) -> CellSim:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _closer(ref):
    def close():
        sim = ref()
        if sim is not None:
            sim.close()

    return close


__all__ = ["CellSim", "SimConfig", "ItemTruth", "CameraInfo", "DOMAINS"]
