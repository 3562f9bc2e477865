"""Feature datasets for the lighting classifier.

`sim_dataset` renders the conveyor_sim cell under each lighting domain (the real training data).
`synthetic_dataset` paints a crude cell-like scene in numpy and develops it with the sim's camera
model (`conveyor_sim.lighting.develop`); it exists for tests and as an honest, clearly-labelled
fallback when the MuJoCo sim is unavailable.

Frames of one (domain, seed) episode are taken `frame_dt` seconds apart (the adapter_manager node
classifies at 2 Hz by default) and pass through one stateful `FeatureExtractor`, exactly as at run
time, so the flicker feature sees the same sampling. The first `warmup_frames` frames of an episode
only fill the flicker window and are not used as samples.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from adapter_manager.features import FEATURE_NAMES, FeatureExtractor, FeatureParams
from s1s2.topics import CONTROL_DT


def sim_dataset(
    domains: list[str],
    seeds: list[int],
    frames_per_episode: int = 6,
    warmup_frames: int = 2,
    frame_dt: float = 0.5,
    camera_size: tuple[int, int] | None = None,
    params: FeatureParams | None = None,
    desc: str = "sim renders",
    camera_jitter: int = 0,
    settle_s: tuple[float, float] = (1.0, 8.0),
    expert_every: int = 0,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(features (N, F), labels (N,) indexing `domains`, per-sample metadata) from sim renders.
    `domains`: lighting domain names, or LightingDomain objects (custom specs).

    Each seed gives a different item layout; a random `settle_s` (uniform range) of belt motion
    before the first frame varies it further (the shipped recipe: 1-8 s of an idle cell). With
    `expert_every` = k > 0, every k-th episode runs the scripted expert (the arm moves through the
    view, items are picked); a longer `settle_s` shows a belt that filled up. Tried, not shipped
    (results/lighting_ablations/): 1-40 s with k = 2 fixed "unknown" on a filled-up idle belt in
    daylight (OOD distances 12-16 -> 3-6) but dropped unknown-lighting detection to 0.896.
    `camera_jitter` > 0 adds that many extra copies of every episode seen by a
    camera with other settings (`jitter_gain`: exposure and white balance drawn once per episode),
    each through its own feature extractor; metadata `variant` is 0 for the clean stream."""
    from conveyor_sim.cell import CellSim, SimConfig

    params = params or FeatureParams()
    xs, ys, meta = [], [], []
    jobs = [(d, s) for s in seeds for d in domains]
    for domain, seed in tqdm(jobs, desc=desc, unit="episode"):
        kwargs = {"seed": int(seed)}
        if camera_size is not None:
            kwargs["camera_width"], kwargs["camera_height"] = camera_size
        sim = CellSim(SimConfig(**kwargs))
        sim.set_lighting(domain)  # a named domain or a LightingDomain (custom spec)
        name = domain if isinstance(domain, str) else domain.name
        try:
            di = domains.index(domain)
            rng = np.random.default_rng([seed, di])
            driver = None
            if expert_every and (di + int(seed)) % expert_every == 0:  # alternates per seed
                from conveyor_sim.expert import ExpertDriver

                driver = ExpertDriver(sim, CONTROL_DT)
            _advance(sim, driver, float(rng.uniform(*settle_s)))
            gains = [None] + [jitter_gain(rng) for _ in range(camera_jitter)]
            extractors = [FeatureExtractor(params) for _ in gains]
            for i in range(frames_per_episode):
                if i:
                    _advance(sim, driver, frame_dt)
                frame = sim.render()
                for variant, (gain, extractor) in enumerate(zip(gains, extractors, strict=True)):
                    vec = extractor(frame if gain is None else apply_gain(frame, gain))
                    if i >= warmup_frames:
                        xs.append(vec)
                        ys.append(domains.index(domain))
                        meta.append({"domain": name, "seed": int(seed), "frame": i, "variant": variant,
                                     "expert": driver is not None})  # fmt: skip
        finally:
            close = getattr(sim, "close", None)
            if callable(close):
                close()
    return np.array(xs).reshape(-1, len(FEATURE_NAMES)), np.array(ys, dtype=np.int64), meta


def _advance(sim, driver, seconds: float) -> None:
    """Step the cell: idle, or with the expert acting every control period."""
    if driver is None:
        sim.step(seconds)
    else:
        driver.run_for(seconds)


def jitter_gain(rng: np.random.Generator) -> np.ndarray:
    """Per-channel gain of a camera set up differently: exposure x0.75..1.3, white balance +-8 %."""
    return rng.uniform(0.75, 1.3) * rng.uniform(0.92, 1.08, size=3)


def apply_gain(frame: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return np.clip(frame.astype(np.float32) * gain.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)


def synthetic_scene(rng: np.random.Generator, width: int = 320, height: int = 240) -> np.ndarray:
    """A crude top view of the cell in 'neutral light' (float RGB 0..1): floor, belt, bins, items."""
    img = np.empty((height, width, 3), np.float32)
    img[:] = rng.uniform(0.25, 0.4) * np.array([1.0, 0.98, 0.95], np.float32)  # floor
    y0, y1 = int(height * 0.35), int(height * 0.65)
    img[y0:y1] = rng.uniform(0.12, 0.2)  # dark belt
    for k in range(3):  # bins below the belt
        x = int(width * (0.15 + 0.3 * k))
        img[int(height * 0.75) : int(height * 0.95), x : x + width // 6] = rng.uniform(0.2, 0.8, 3)
    for _ in range(int(rng.integers(2, 7))):  # items on the belt
        w, h = int(rng.integers(10, 40)), int(rng.integers(10, 30))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(y0, max(y0 + 1, y1 - h)))
        img[y : y + h, x : x + w] = rng.uniform(0.1, 0.95, 3)
    return img


def synthetic_dataset(
    domains: list[str],
    seeds: list[int],
    frames_per_episode: int = 6,
    warmup_frames: int = 2,
    frame_dt: float = 0.5,
    camera_size: tuple[int, int] = (320, 240),
    params: FeatureParams | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Like `sim_dataset`, but on `synthetic_scene` images lit by a crude model of each domain's
    lights (intensity, colour temperature, a left-right gradient for side light) and developed by
    the sim's camera model. Not a substitute for sim renders: labelled `synthetic` wherever used."""
    from conveyor_sim.lighting import develop, get_domain

    params = params or FeatureParams()
    xs, ys, meta = [], [], []
    for seed in seeds:
        for domain in domains:
            dom = get_domain(domain)
            rng = np.random.default_rng([seed, domains.index(domain)])
            scene = synthetic_scene(rng, *camera_size)
            light = dom.light_rgb().astype(np.float32) * dom.intensity
            side = float(np.clip(abs(dom.direction[0]) / (abs(dom.direction[2]) + 1e-6), 0.0, 3.0))
            ramp = np.linspace(1.0 + 0.3 * side, 1.0 - 0.3 * side, camera_size[0], dtype=np.float32)
            if dom.direction[0] < 0:
                ramp = ramp[::-1]
            lit = scene * (dom.ambient + light[None, None, :] * ramp[None, :, None] * 0.9)
            extractor = FeatureExtractor(params)
            t = float(rng.uniform(0.0, 10.0))
            for i in range(frames_per_episode):
                frame = develop(np.clip(lit * 255.0, 0, 255).astype(np.uint8), dom, rng, t + i * frame_dt)
                vec = extractor(frame)
                if i >= warmup_frames:
                    xs.append(vec)
                    ys.append(domains.index(domain))
                    meta.append({"domain": domain, "seed": int(seed), "frame": i})
    return np.array(xs).reshape(-1, len(FEATURE_NAMES)), np.array(ys, dtype=np.int64), meta
