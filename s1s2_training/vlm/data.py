"""Labelled planner frames from the conveyor sim: image + the answer System 2 should give.

    frames = generate(FrameSpec(mode="dense", lighting="daylight", seeds=range(100, 140)), image_size=128)
    save(frames, "train.npz"); frames = load("train.npz")

Each episode (one seed) runs the scripted expert (`ExpertDriver`) on a `CellSim` with the normal
spawner, so the arm is really picking: frames show the arm anywhere, items on the suction cup,
items being dropped. Frames are taken every `frame_every_s` (+- jitter) after a warm-up.

Modes:
  default     the stack's default spawn density (SimConfig defaults): most frames hold <= 1 item.
  dense       before each frame, extra items are put on the belt at random places (random class,
              size, colour, yaw as the spawner draws them, no overlap) until 2..4 items are on it,
              then the sim runs 0.05..0.4 s so they rest and the expert may react.
  dense_hold  as dense, but the extra items go only where select_target must ignore them: the
              downstream end the arm can no longer follow (x > 0.62 m). Mostly holds with items.
  lazy        default density, but while the expert is idle (arm at rest, nothing held) it often
              waits (LAZY_P) instead of reacting, so items ride into reach and through it with the
              arm at rest, as they do in the closed loop while System 1 waits for a confident goal
              (the expert alone picks within a second, so default frames rarely show this).

Labels (the data pitfalls of issue 9):
  * target = conveyor_sim.expert.select_target(ground truth): the most downstream reachable item.
    Items on the suction cup (grasped) or off the belt are never targets (select_target skips
    them; `s1s2 sim export`'s target_class is not used).
  * pixel = the projection of the target's pick point at BELT HEIGHT (x, y, belt top): the pixel
    the planner must answer so that its deprojection onto the belt plane lands on the item
    (pointing at the visible top costs centimetres of parallax).
  * no target -> "label=none".

Stored per frame: the image exactly as the planner's image processor resizes it (PIL bicubic,
uint8, image_size^2), optionally the full 320x240 camera frame (evaluation through the planner),
the label, the answer pixel, the pick point, every item's class/pixel/state (auxiliary losses,
analysis), candidate counts, belt odometry and time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from s1s2.cell import DEFAULT_CELL

CLASSES = tuple(DEFAULT_CELL.class_names)
BINS = tuple(DEFAULT_CELL.bin_ids)
CONTROL_DT = 0.02
MAX_ITEMS = 16  # items stored per frame (more are dropped from the item table, never from labels)
BELT_Z = DEFAULT_CELL.belt.surface_height
LAZY_P = 0.7  # lazy mode: chance that an idle expert waits one more frame interval
MODES = ("default", "dense", "dense_hold", "lazy")
DOMAIN_TRAIN_MODES = ("default", "dense")  # an adapter's training episodes, split evenly, unless told


@dataclass(frozen=True)
class FrameSpec:
    mode: str = "default"  # default | dense | dense_hold | lazy
    lighting: str = "daylight"
    seeds: tuple[int, ...] = (0,)
    episode_s: float = 40.0
    warmup_s: float = 3.0
    frame_every_s: float = 1.0
    jitter: float = 0.3  # +- fraction of frame_every_s
    dense_items: tuple[int, int] = (2, 4)
    keep_full: bool = False  # also store the 320x240 frame (evaluation through the planner)
    # also store `target_visible`: the share of the target's pixels the arm leaves in view
    # (segmentation renders with and without the arm; NaN on hold frames). Evaluation only.
    visibility: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"FrameSpec.mode {self.mode!r}; valid: {', '.join(MODES)}")


def target_pixel(camera, item) -> np.ndarray:
    """(u, v) of the item's pick point projected at belt height."""
    p = np.array([item.pick_point[0], item.pick_point[1], BELT_Z])
    return camera.project(p[None])[0]


def candidates(items, arm=DEFAULT_CELL.arm, horizon_s: float = 1.8) -> int:
    """How many items select_target chooses among (on belt, not held, reachable now and later)."""
    from conveyor_sim.expert import reachable

    n = 0
    for it in items:
        if not it.on_belt or it.grasped:
            continue
        p = np.asarray(it.pick_point)
        if reachable(arm, p) and reachable(arm, p + horizon_s * np.asarray(it.velocity)):
            n += 1
    return n


_HOLD_ZONE = (0.62, 0.88)


def _inject(sim, rng: np.random.Generator, n_target: int, hold_zone: bool = False) -> int:
    """Put items on the belt until n_target are on it; returns how many were added."""
    belt = sim.desc.belt
    on = [it for it in sim.ground_truth() if it.on_belt and not it.grasped]
    added = 0
    tries = 0
    while len(on) + added < n_target and tries < 40:
        tries += 1
        c = sim.desc.items[int(rng.integers(len(sim.desc.items)))]
        x = (
            rng.uniform(*_HOLD_ZONE)
            if hold_zone
            else rng.uniform(-belt.length / 2 + 0.12, belt.length / 2 - 0.15)
        )
        y = rng.uniform(-belt.width / 2 + 0.09, belt.width / 2 - 0.09)
        pts = [it.position[:2] for it in sim.ground_truth() if it.on_belt or it.grasped]
        if any(math.hypot(x - p[0], y - p[1]) < (0.12 if hold_zone else 0.17) for p in pts):
            continue
        scale = 1.0 + c.size_jitter * rng.uniform(-1.0, 1.0)
        colour = np.array(c.colours[int(rng.integers(len(c.colours)))], dtype=np.float64)
        colour[:3] = np.clip(colour[:3] + rng.uniform(-c.colour_jitter, c.colour_jitter, 3), 0.0, 1.0)
        if sim.spawn_item(c.name, x, y, rng.uniform(-math.pi, math.pi), scale, colour) is not None:
            added += 1
    return added


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """The planner image processor's resize (PIL bicubic), kept as uint8 (exact: PIL works in uint8)."""
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))


def episode(spec: FrameSpec, seed: int, image_size: int) -> list[dict]:
    from conveyor_sim.cell import CellSim, SimConfig
    from conveyor_sim.expert import ExpertDriver

    sim = CellSim(SimConfig(seed=seed, lighting=spec.lighting))
    drv = ExpertDriver(sim, CONTROL_DT)
    rng = np.random.default_rng([seed, 7919])
    camera = sim.camera_info()
    rows = []
    seg = None

    try:
        drv.run_for(spec.warmup_s)
        while sim.time < spec.episode_s:
            dt = spec.frame_every_s * (1.0 + spec.jitter * rng.uniform(-1.0, 1.0))
            if (
                spec.mode == "lazy"
                and drv.expert.phase == "idle"
                and sim.holding() is None
                and rng.random() < LAZY_P
            ):
                for _ in range(max(1, int(round(dt / CONTROL_DT)))):
                    sim.step(CONTROL_DT)  # the arm holds its last command: the expert waits
            else:
                drv.run_for(dt)
            if spec.mode in ("dense", "dense_hold"):
                lo, hi = spec.dense_items
                if _inject(sim, rng, int(rng.integers(lo, hi + 1)), spec.mode == "dense_hold"):
                    drv.run_for(rng.uniform(0.05, 0.4))
            rows.append(frame(sim, camera, seed, image_size, spec.keep_full))
            if spec.visibility:
                seg = seg or _Segmenter(sim)
                k = rows[-1]["target_index"]
                target_id = sim.ground_truth()[k].item_id if k >= 0 else None
                rows[-1]["target_visible"] = seg.visible_share(sim, target_id)
    finally:
        if seg is not None:
            seg.close()
        sim.close()
    return rows


class _Segmenter:
    """How much of an item the arm hides from the overhead camera: the item's pixels in a
    segmentation render, over its pixels when the arm (geom group 1) is not drawn."""

    ARM_GROUP = 1

    def __init__(self, sim, width: int = 160, height: int = 120):
        import mujoco

        self._mj = mujoco
        self.renderer = mujoco.Renderer(sim.model, height, width)
        self.renderer.enable_segmentation_rendering()
        self.cam = sim.camera.cam_id

    def _pixels(self, sim, geom: int, arm: bool) -> int:
        opt = self._mj.MjvOption()
        opt.geomgroup[self.ARM_GROUP] = int(arm)
        self.renderer.update_scene(sim.data, camera=self.cam, scene_option=opt)
        seg = self.renderer.render()
        return int(((seg[..., 0] == geom) & (seg[..., 1] == int(self._mj.mjtObj.mjOBJ_GEOM))).sum())

    def visible_share(self, sim, item_id: str | None) -> float:
        if item_id is None:
            return math.nan
        geom = next(it.slot.geom for it in sim.items.items if it.item_id == item_id)
        alone = self._pixels(sim, geom, arm=False)
        return self._pixels(sim, geom, arm=True) / alone if alone else math.nan

    def close(self) -> None:
        self.renderer.close()


def frame(sim, camera, seed: int, image_size: int, keep_full: bool = False) -> dict:
    """The labelled frame of the sim's current state."""
    row = labelled_row(sim.render(), sim.ground_truth(), camera, sim.desc.arm, image_size, keep_full)
    row.update(
        holding=int(sim.holding() is not None), belt_position=sim.belt_position(), time=sim.time, seed=seed
    )
    return row


def labelled_row(image, items, camera, arm, image_size: int, keep_full: bool = False) -> dict:
    """A training / test row from a camera image and the ground truth of that moment (the sim's
    items, or a recorded /sim/frame_ground_truth read back by `conveyor_sim.items.items_from_msg`):
    the label is the item the scripted expert would pick (select_target), or a hold."""
    from conveyor_sim.expert import select_target

    tgt = select_target(items, arm)
    item_cls = np.full(MAX_ITEMS, -1, np.int16)
    item_uv = np.zeros((MAX_ITEMS, 2), np.float32)
    item_state = np.zeros(MAX_ITEMS, np.int8)  # 1 on belt, 2 grasped, 3 free (falling / off belt)
    t_index = -1
    for k, it in enumerate(items[:MAX_ITEMS]):
        item_cls[k] = CLASSES.index(it.class_label)
        item_uv[k] = target_pixel(camera, it)
        item_state[k] = 2 if it.grasped else (1 if it.on_belt else 3)
        if tgt is not None and it.item_id == tgt.item_id:
            t_index = k
    row = {
        "pixels": resize(image, image_size),
        "label": -1 if tgt is None else CLASSES.index(tgt.class_label),
        "uv": np.zeros(2, np.float32) if tgt is None else target_pixel(camera, tgt).astype(np.float32),
        "pick": np.zeros(3, np.float32) if tgt is None else np.asarray(tgt.pick_point, np.float32),
        "target_index": t_index,
        "item_cls": item_cls,
        "item_uv": item_uv,
        "item_state": item_state,
        "n_on_belt": sum(1 for it in items if it.on_belt and not it.grasped),
        "n_candidates": candidates(items, arm),
        "holding": int(any(it.grasped for it in items)),
        "belt_position": 0.0,
        "time": 0.0,
        "seed": -1,
    }
    if keep_full:
        row["image"] = image
    return row


def operator_row(image, label: str, uv, camera, image_size: int) -> dict:
    """A training / test row from a camera image and a person's label (`s1s2 nightly sheet`): the
    class to pick and its pick pixel in the image as the camera published it, or "none". The pick
    point is that pixel on the belt plane, as the planner deprojects it. No item list comes with
    such a label, so the item table is empty and n_on_belt / n_candidates are 0 (not known)."""
    target = label != "none"
    if target and label not in CLASSES:
        raise ValueError(f"label {label!r} is not one of {', '.join(CLASSES)} or none")
    uv = np.asarray(uv if target else (0.0, 0.0), np.float32)
    return {
        "pixels": resize(image, image_size),
        "label": CLASSES.index(label) if target else -1,
        "uv": uv,
        "pick": np.asarray(camera.pixel_to_plane(float(uv[0]), float(uv[1]), BELT_Z), np.float32)
        if target
        else np.zeros(3, np.float32),
        "target_index": -1,
        "item_cls": np.full(MAX_ITEMS, -1, np.int16),
        "item_uv": np.zeros((MAX_ITEMS, 2), np.float32),
        "item_state": np.zeros(MAX_ITEMS, np.int8),
        "n_on_belt": 0,
        "n_candidates": 0,
        "holding": 0,
        "belt_position": 0.0,
        "time": 0.0,
        "seed": -1,
    }


def _worker(args):
    spec, seed, image_size = args
    return episode(spec, seed, image_size)


def generate(
    spec: FrameSpec, image_size: int, workers: int = 1, progress: bool = True, desc: str = ""
) -> dict:
    """All frames of spec.seeds (one episode per seed) as a dict of stacked arrays (seeded: the
    same spec gives the same frames, whatever `workers`)."""
    from tqdm import tqdm

    seeds = list(spec.seeds)
    parts: dict[int, list[dict]] = {}
    bar = tqdm(
        total=len(seeds), desc=desc or f"{spec.mode}/{spec.lighting} frames", unit="ep", disable=not progress
    )
    if workers <= 1 or len(seeds) <= 1:
        for s in seeds:
            parts[s] = episode(spec, s, image_size)
            bar.update(1)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # MuJoCo/EGL contexts must not be forked
        with ctx.Pool(workers) as pool:
            for s, rows in zip(
                seeds, pool.imap(_worker, [(spec, s, image_size) for s in seeds]), strict=True
            ):
                parts[s] = rows
                bar.update(1)
    bar.close()
    rows = [r for s in seeds for r in parts[s]]
    return stack(rows, spec)


def stack(rows: list[dict], spec: FrameSpec) -> dict:
    data = {k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]}
    data["lighting"] = np.array([spec.lighting] * len(rows))
    data["mode"] = np.array([spec.mode] * len(rows))
    return data


def concat(parts: list[dict]) -> dict:
    keys = set.intersection(*(set(p) for p in parts))
    return {k: np.concatenate([p[k] for p in parts]) for k in sorted(keys)}


def subset(data: dict, index) -> dict:
    return {k: v[index] for k, v in data.items()}


def scored(mode: str, data: dict) -> dict:
    """A held-out set as it is scored: of a dense set, the frames with 2..4 items on the belt (the
    choice among items is tested); any other set whole."""
    return subset(data, (data["n_on_belt"] >= 2) & (data["n_on_belt"] <= 4)) if mode == "dense" else data


def save(data: dict, path) -> None:
    np.savez(path, **data)


def load(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def summary(data: dict) -> dict:
    lab = data["label"]
    return {
        "frames": int(len(lab)),
        "targets": int((lab >= 0).sum()),
        "holds": int((lab < 0).sum()),
        "frames_2plus_candidates": int((data["n_candidates"] >= 2).sum()),
        "on_belt_hist": np.bincount(data["n_on_belt"], minlength=6).tolist(),
        "class_hist": np.bincount(lab[lab >= 0], minlength=len(CLASSES)).tolist(),
        "holding_frames": int(data["holding"].sum()),
    }


def cached(
    spec: FrameSpec, image_size: int, cache_dir, workers: int = 1, progress: bool = True, desc: str = ""
) -> dict:
    """generate(), kept as <cache_dir>/<mode>_<lighting>_<hash of spec + size>.npz and read back
    from there next time (the frames are a pure function of the spec). cache_dir None: no cache."""
    import hashlib
    from dataclasses import asdict
    from pathlib import Path

    if cache_dir is None:
        return generate(spec, image_size, workers, progress, desc)
    fields = asdict(spec)
    if not spec.visibility:
        del fields["visibility"]  # the caches made before that field existed keep their keys
    if spec.mode == "lazy":
        fields["lazy_p"] = LAZY_P
    key = hashlib.sha256(repr((sorted(fields.items()), image_size, 1)).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{spec.mode}_{spec.lighting}_{key}.npz"
    if path.is_file():
        return load(path)
    data = generate(spec, image_size, workers, progress, desc)
    path.parent.mkdir(parents=True, exist_ok=True)
    import os

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")  # concurrent writers never share it
    save(data, tmp)
    tmp.rename(path)
    return data


# Seed ranges (disjoint): what every set of the sim VLM is made of. Held-out sets never share a
# seed with a training set.
TRAIN_DEFAULT_SEED0, TRAIN_DENSE_SEED0 = 1000, 100000
CALIB_DEFAULT_SEED0, CALIB_DENSE_SEED0 = 500000, 510000
TEST_DEFAULT_SEED0, TEST_DENSE_SEED0 = 900000, 910000
DOMAIN_TRAIN_DEFAULT_SEED0, DOMAIN_TRAIN_DENSE_SEED0 = 2000, 102000
DOMAIN_TEST_DEFAULT_SEED0, DOMAIN_TEST_DENSE_SEED0 = 930000, 940000


def seeds(start: int, n: int) -> tuple[int, ...]:
    return tuple(range(start, start + n))


def domain_train_specs(
    lighting: str,
    episodes: int = 8,
    frame_every_s: float = 0.5,
    episode_s: float = 40.0,
    modes: tuple[str, ...] = DOMAIN_TRAIN_MODES,
) -> list[FrameSpec]:
    """Training frames of one lighting domain (adapters): the episodes split evenly over `modes`
    (default: half default density, half dense). dense episodes use the dense seeds, the others
    the default seeds (a lazy episode of a seed is its default scene with a waiting expert)."""
    for m in modes:
        if m not in MODES:
            raise ValueError(f"frame mode {m!r}; valid: {', '.join(MODES)}")
    if not modes or len(set(modes)) != len(modes) or episodes < len(modes):
        raise ValueError(f"frame modes {modes!r} for {episodes} episodes: one or more distinct modes, "
                         "at least one episode each")  # fmt: skip
    specs, given = [], 0
    for i, mode in enumerate(modes):
        n = episodes * (i + 1) // len(modes) - given
        given += n
        seed0 = DOMAIN_TRAIN_DENSE_SEED0 if mode.startswith("dense") else DOMAIN_TRAIN_DEFAULT_SEED0
        specs.append(FrameSpec(mode, lighting, seeds(seed0, n), episode_s, frame_every_s=frame_every_s))
    return specs


def domain_test_specs(
    lighting: str, default_episodes: int = 14, dense_episodes: int = 8, episode_s: float = 40.0
) -> list[FrameSpec]:
    """Held-out frames of one lighting domain (also daylight, for forgetting): default + dense.
    The same seeds in every domain: the same scenes under another light."""
    return [
        FrameSpec("default", lighting, seeds(DOMAIN_TEST_DEFAULT_SEED0, default_episodes), episode_s),
        FrameSpec("dense", lighting, seeds(DOMAIN_TEST_DENSE_SEED0, dense_episodes), episode_s),
    ]


def frames_of(
    specs: list[FrameSpec], image_size: int, cache_dir=None, workers: int = 1, progress: bool = True
) -> dict:
    return concat([cached(s, image_size, cache_dir, workers, progress) for s in specs])
