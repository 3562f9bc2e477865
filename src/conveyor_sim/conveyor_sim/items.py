"""The cell's items (MuJoCo; no rclpy): a fixed pool of bodies per class, the seeded spawner, the
suction cup's attach/release, each item's life cycle on the belt and its ground truth.

Bodies are created once in the MJCF (`pool_per_class` per class) and parked out of sight; spawning
moves a parked body onto the belt with a jittered size and colour, despawning parks it again. An
item's state: "belt" (resting on the belt, carried at belt speed) -> "grasped" (kinematically
attached to the suction tip) -> "free" (falling, or resting anywhere but on the belt) -> "scored"
(in a bin, missed or dropped; parked `DESPAWN_AFTER_S` later). `CellSim` owns one `ItemPool`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from conveyor_sim import mjcf
from s1s2.cell import CellDescription, ItemClassSpec

# Seconds an item stays visible after it was scored (in a bin, on the floor) before its body
# returns to the pool.
DESPAWN_AFTER_S = 1.5
# Suction attaches when the cup tip is this close to an item's top surface.
SUCTION_Z_TOL = (-0.03, 0.02)  # tip z minus item top z: (below, above)
SUCTION_XY_MARGIN = 0.01
SPAWN_GAP_M = 0.26  # free belt length needed upstream before the next item spawns
SPAWN_MARGIN_Y = 0.09  # keep spawned items this far from the belt's edges
SPAWN_MARGIN_X = 0.12  # the spawner puts items this far in from the belt's upstream end


def spawn_x(belt) -> float:
    """World x where the spawner puts items: near the belt's upstream end."""
    return -belt.length / 2 + SPAWN_MARGIN_X


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
    item: Item | None = None


def items_from_msg(msg, belt_speed: float) -> list[ItemTruth]:
    """Items of an s1s2_interfaces/GroundTruth message (duck-typed: no rclpy here); the message has
    no velocities, so items on the belt get `belt_speed` along x, as the cell moves them."""
    out = []
    for it in msg.items:
        pos = np.array([it.pose.position.x, it.pose.position.y, it.pose.position.z])
        q = it.pose.orientation
        size = np.array([it.size.x, it.size.y, it.size.z])
        vel = np.array([belt_speed if it.on_belt else 0.0, 0.0, 0.0])
        out.append(
            ItemTruth(it.item_id, it.class_label, it.bin_id, pos, np.array([q.w, q.x, q.y, q.z]), vel, size,
                      pos + np.array([0.0, 0.0, size[2] / 2]), bool(it.on_belt), bool(it.grasped))
        )  # fmt: skip
    return out


@dataclass
class Item:
    item_id: str
    slot: _Slot
    scale: float
    spawn_time: float
    state: str = "belt"  # belt | grasped | free | scored
    grasp_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scored_at: float = 0.0
    # the lighting while it last lay on the belt before the arm's pick line (CellSim scores it under
    # this light); "" until the cell's book-keeping has seen it there
    presented_in: str = ""


class ItemPool:
    """Every item body of one MjModel, the spawner and the suction cup's grip on them."""

    def __init__(self, model, data, desc: CellDescription, classes: list[ItemClassSpec], pool_per_class: int):
        self.model, self.data, self.desc = model, data, desc
        self._classes = classes
        self._slots: dict[str, list[_Slot]] = {}
        idx = 0
        for c in desc.items:
            lst = []
            for k in range(pool_per_class):
                name = mjcf.item_body_name(c.name, k)
                b = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
                g = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
                jnt = model.body_jntadr[b]
                lst.append(
                    _Slot(
                        c, b, g, int(model.jnt_qposadr[jnt]), int(model.jnt_dofadr[jnt]), mjcf.park_position(idx),
                        model.geom_size[g].copy(), float(model.body_mass[b]), model.body_inertia[b].copy(),
                        float(model.geom_rbound[g]), model.geom_aabb[g].copy(),
                    )
                )  # fmt: skip
                idx += 1
            self._slots[c.name] = lst
        self.items: list[Item] = []
        self.reset(np.random.default_rng(0), 0.0)

    def reset(self, rng: np.random.Generator, belt_speed: float) -> None:
        """Park every body, forget every item; `rng` drives the spawner from now on."""
        self._rng = rng
        self._belt_speed = belt_speed
        self.items = []
        self.spawned = 0
        self.spawn_times: list[float] = []
        self.spawn_skipped = 0
        for slots in self._slots.values():
            for s in slots:
                s.item = None
                self._park(s)

    def set_belt_speed(self, speed: float) -> None:
        self._belt_speed = speed

    # ------------------------------------------------------------ geometry
    def position(self, it: Item) -> np.ndarray:
        return self.data.qpos[it.slot.qpos : it.slot.qpos + 3]

    def half_height_world(self, it: Item) -> float:
        """Vertical half-extent of the item in its current orientation."""
        s = it.slot
        gm = self.data.geom_xmat[s.geom].reshape(3, 3)
        size = self.model.geom_size[s.geom]
        if s.cls.shape == "sphere":
            return float(size[0])
        if s.cls.shape == "cylinder":
            r, hl = size[0], size[1]
            az = abs(gm[2, 2])
            return float(hl * az + r * math.sqrt(max(0.0, 1.0 - az * az)))
        return float(np.abs(gm[2, :]) @ size[:3])

    def holding(self) -> Item | None:
        return next((it for it in self.items if it.state == "grasped"), None)

    # ------------------------------------------------------------ physics hooks
    def drive(self, tip: np.ndarray, tip_vel: np.ndarray) -> None:
        """Before each physics step: items on the belt move at belt speed, a held item follows the tip."""
        d, v = self.data, self._belt_speed
        for it in self.items:
            s = it.slot
            if it.state == "belt":
                d.qvel[s.qvel : s.qvel + 6] = (v, 0.0, d.qvel[s.qvel + 2], 0.0, 0.0, 0.0)
            elif it.state == "grasped":
                d.qpos[s.qpos : s.qpos + 3] = tip + it.grasp_offset
                d.qvel[s.qvel : s.qvel + 3] = tip_vel
                d.qvel[s.qvel + 3 : s.qvel + 6] = 0.0
            elif it.state == "scored":
                d.qvel[s.qvel : s.qvel + 6] = 0.0

    def update_states(self, now: float) -> list[Item]:
        """Belt/free transitions and despawning; returns the free items to score."""
        belt = self.desc.belt
        free = []
        for it in list(self.items):
            if it.state == "scored":
                if now - it.scored_at >= DESPAWN_AFTER_S:
                    self._despawn(it)
                continue
            if it.state == "grasped":
                continue
            pos = self.position(it)
            bottom = pos[2] - self.half_height_world(it)
            on_belt_area = abs(pos[0]) <= belt.length / 2 and abs(pos[1]) <= belt.width / 2
            resting = on_belt_area and abs(bottom - belt.surface_height) < 0.02
            if it.state == "belt" and not resting:
                it.state = "free"
            elif it.state == "free" and resting:
                it.state = "belt"
            if it.state == "free":
                free.append(it)
        return free

    # ------------------------------------------------------------ suction
    def try_attach(self, tip: np.ndarray) -> Item | None:
        """Attach the nearest item whose top is at the cup; None when nothing is in reach."""
        best, best_d = None, math.inf
        for it in self.items:
            if it.state not in ("belt", "free"):
                continue
            pos = self.position(it)
            dz = tip[2] - (pos[2] + self.half_height_world(it))
            if not SUCTION_Z_TOL[0] <= dz <= SUCTION_Z_TOL[1]:
                continue
            reach = 0.5 * min(it.slot.cls.bbox(it.scale)[:2]) + SUCTION_XY_MARGIN
            dxy = math.hypot(tip[0] - pos[0], tip[1] - pos[1])
            if dxy <= reach and dxy < best_d:
                best, best_d = it, dxy
        if best is not None:
            best.grasp_offset = self.position(best) - tip
            best.state = "grasped"
            # Carried items are kinematic: no gravity, no contacts (pushing a kinematic body
            # through others would make the solver blow up).
            self._collide(best.slot, False)
        return best

    def release_all(self) -> None:
        for it in self.items:
            if it.state == "grasped":
                it.state = "free"
                self._collide(it.slot, True)

    # ------------------------------------------------------------ spawning
    def spawn_item(
        self, class_name: str, now: float, x=None, y=0.0, yaw=0.0, scale=1.0, colour=None
    ) -> str | None:
        """Put one item of `class_name` on the belt (x defaults to the upstream end). Returns its
        item_id, or None when that class's pool is exhausted."""
        c = self.desc.item_class(class_name)
        slot = next((s for s in self._slots[c.name] if s.item is None), None)
        if slot is None:
            self.spawn_skipped += 1
            return None
        belt = self.desc.belt
        x = -belt.length / 2 + 0.12 if x is None else x
        m, d = self.model, self.data
        g, b = slot.geom, slot.body
        m.geom_size[g] = slot.size0 * scale
        m.geom_rbound[g] = slot.rbound0 * scale
        m.geom_aabb[g] = slot.aabb0 * scale
        m.body_mass[b] = slot.mass0 * scale**3
        m.body_inertia[b] = slot.inertia0 * scale**5
        m.geom_rgba[g] = colour if colour is not None else c.colours[0]
        self._collide(slot, True)
        z = belt.surface_height + c.half_height(scale) + 0.002
        q = np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])
        d.qpos[slot.qpos : slot.qpos + 7] = (x, y, z, *q)
        d.qvel[slot.qvel : slot.qvel + 6] = (self._belt_speed, 0, 0, 0, 0, 0)
        item = Item(f"item_{self.spawned:05d}", slot, float(scale), now)
        self.spawned += 1
        self.spawn_times.append(now)
        slot.item = item
        self.items.append(item)
        mujoco.mj_forward(m, d)
        return item.item_id

    def spawn_random(self, now: float, jitter: float, interval_s: float) -> float:
        """Spawn one random item at the upstream end if there is room; returns when to try next."""
        rng, belt = self._rng, self.desc.belt
        interval = interval_s * (1.0 + jitter * rng.uniform(-1.0, 1.0))
        x0 = spawn_x(belt)
        for it in self.items:
            if it.state == "belt" and self.position(it)[0] - x0 < SPAWN_GAP_M:
                return now + 0.2  # keep a gap so items never spawn into each other
        c = self._classes[int(rng.integers(len(self._classes)))]
        scale = 1.0 + c.size_jitter * rng.uniform(-1.0, 1.0)
        base = np.array(c.colours[int(rng.integers(len(c.colours)))])
        colour = base.copy()
        colour[:3] = np.clip(base[:3] + rng.uniform(-c.colour_jitter, c.colour_jitter, 3), 0.0, 1.0)
        y = rng.uniform(-belt.width / 2 + SPAWN_MARGIN_Y, belt.width / 2 - SPAWN_MARGIN_Y)
        yaw = rng.uniform(-math.pi, math.pi)
        self.spawn_item(c.name, now, x0, y, yaw, scale, colour)
        return now + interval

    def mark_scored(self, it: Item, now: float) -> None:
        """A scored item stays visible until it despawns, frozen where it was scored and without
        contacts: items tumbling into a bin together could wedge and diverge (seen with learned
        policies: a scored item's velocity grew 10x per step until MuJoCo's auto-reset wiped the
        whole cell), and nothing is decided by what a scored item does next."""
        it.state = "scored"
        it.scored_at = now
        self._collide(it.slot, False)
        self.data.qvel[it.slot.qvel : it.slot.qvel + 6] = 0.0

    # ------------------------------------------------------------ ground truth
    def ground_truth(self) -> list[ItemTruth]:
        """Every item in play (scored items that are about to disappear are left out)."""
        out = []
        d = self.data
        for it in self.items:
            if it.state == "scored":
                continue
            s = it.slot
            pos = d.qpos[s.qpos : s.qpos + 3].copy()
            out.append(
                ItemTruth(
                    item_id=it.item_id,
                    class_label=s.cls.name,
                    bin_id=s.cls.bin_id,
                    position=pos,
                    quaternion=d.qpos[s.qpos + 3 : s.qpos + 7].copy(),
                    velocity=d.qvel[s.qvel : s.qvel + 3].copy(),
                    size=np.array(s.cls.bbox(it.scale)),
                    pick_point=pos + np.array([0.0, 0.0, self.half_height_world(it)]),
                    on_belt=it.state == "belt",
                    grasped=it.state == "grasped",
                )
            )
        return out

    # ------------------------------------------------------------ internals
    def _collide(self, s: _Slot, on: bool) -> None:
        self.model.geom_contype[s.geom] = int(on)
        self.model.geom_conaffinity[s.geom] = int(on)
        self.model.body_gravcomp[s.body] = 0.0 if on else 1.0

    def _park(self, s: _Slot) -> None:
        self._collide(s, False)
        self.data.qpos[s.qpos : s.qpos + 7] = (*s.park, 1.0, 0.0, 0.0, 0.0)
        self.data.qvel[s.qvel : s.qvel + 6] = 0.0

    def _despawn(self, it: Item) -> None:
        self._park(it.slot)
        it.slot.item = None
        self.items.remove(it)
