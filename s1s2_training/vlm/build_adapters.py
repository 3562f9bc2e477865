"""`s1s2 models adapters`: the shipped per-domain QLoRA adapters in models/adapters/, trained on
the NF4 base (models/sim_vlm) with `s1s2 planner finetune`'s recipe, one per non-daylight lighting
domain. The daylight entry stays the B = 0 starter the base's builder writes: in daylight the base
model is the right answer (no adapter can improve on the domain it was pretrained on by much, and
leaving one active costs accuracy elsewhere).

Each adapter is evaluated on held-out frames of its domain and of daylight, and gets its own
min_confidence from calibration frames of its domain (finetune does both); the record collects
those metrics per domain.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

# The recipe of the shipped adapters: the strategy comparison (docs/planner.md) chose
# projector+vision for lighting shift, at lambda 0.1. Since 2026-12-06, 2400 steps x 16 over 64
# training episodes per domain (was 600 over 16): longer training over more scenes gained 1.6-3.8
# points of held-out class accuracy and lowered the confident wrong picks at the adapter's own gate
# in four of five domains (docs/sim_vlm.md, "Longer training for every adapter").
SHIPPED = {"strategy": "projector+vision", "rank": 8, "alpha": 16, "mix": 0.1, "steps": 2400}
TRAIN_EPISODES = 64
# Per-domain departures from SHIPPED (FinetuneConfig fields, and train_episodes), each chosen by
# measurement (docs/sim_vlm.md, "Input colour constancy"): a per-channel gain darkens a frame with
# veiling glare instead of undoing it (the low-sun adapter on raw frames 76.9 % against 70.9 % on
# normalised ones); and low sun, the furthest under daylight, trains twice as long over twice the
# scenes (held-out class 80.7 -> 83.5 %; night noise did not gain from the same: 81.4 -> 80.4 %;
# docs/sim_vlm.md, "Low sun trained longer"). A domain may also name its frame `modes`; low sun
# with a third lazy episodes was tried through the nodes and not shipped (docs/adapter_manager.md,
# "The low-sun adapter on lazy frames").
OVERRIDES: dict[str, dict] = {
    "low_sun_glare": {"colour_constancy": False, "steps": 4800, "train_episodes": 128}
}
KEEP = ("class_acc", "pick_err_median_cm", "confident_wrong_pick_rate", "acted_picks", "frames")


def domains() -> list[str]:
    from conveyor_sim.lighting import DOMAINS

    return [d for d in DOMAINS if d != "daylight"]


def recipe_of(domain: str, recipe: dict, train_episodes: int) -> tuple[dict, int, tuple[str, ...]]:
    """(FinetuneConfig fields, training episodes, frame modes) of one domain: `recipe`,
    `train_episodes` and data.DOMAIN_TRAIN_MODES with the domain's OVERRIDES on top."""
    from .data import DOMAIN_TRAIN_MODES

    over = dict(OVERRIDES.get(domain, {}))
    episodes = int(over.pop("train_episodes", train_episodes))
    modes = tuple(over.pop("modes", DOMAIN_TRAIN_MODES))
    return recipe | over, episodes, modes


def max_train_episodes() -> int:
    """The most training episodes any shipped adapter uses (its seeds are not held out)."""
    return max([TRAIN_EPISODES] + [o.get("train_episodes", TRAIN_EPISODES) for o in OVERRIDES.values()])


def overrides_note() -> str:
    """OVERRIDES as `s1s2 planner finetune` flags, per domain (for the manifest's notes)."""

    def flags(over: dict) -> str:
        parts = ["--no-colour-constancy"] if over.get("colour_constancy") is False else []
        parts += [
            f"--{k.replace('_', '-')} {','.join(v) if k == 'modes' else v}"
            for k, v in over.items()
            if k != "colour_constancy"
        ]
        return " ".join(parts)

    return "; ".join(f"{d}: {flags(o)}" for d, o in OVERRIDES.items())


def train_one(job: tuple) -> tuple[str, dict, float]:
    """One domain's adapter (finetune: train, evaluate, calibrate, register in the library):
    (domain, metrics, seconds). Module level, so a spawned worker process can run it."""
    from .finetune import FinetuneConfig, finetune

    domain, fields, episodes, modes, base_dir, out_dir = job
    t1 = time.monotonic()
    res = finetune(
        FinetuneConfig(**fields), domain, base_dir, out_dir, work_dir="runs/vlm_data", train_episodes=episodes,
        modes=modes,
    )  # fmt: skip
    return domain, res["metrics"], round(time.monotonic() - t1, 1)


def run_jobs(fn, jobs: list, workers: int) -> list:
    """[fn(job) for job in jobs], in this process (workers <= 1) or over `workers` spawned
    processes, started in the order of `jobs`. Each job trains on one thread, so two workers use
    a 2-core machine's second core; the library's registration is atomic per adapter."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(j) for j in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")  # no fork of a process that holds torch threads
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx) as pool:
        return list(pool.map(fn, jobs))


def default_workers() -> int:
    import os

    return max(1, min(2, os.cpu_count() or 1))


def build(out_dir: Path, seed: int, base_dir: Path | None = None, steps: int | None = None,
          train_episodes: int = TRAIN_EPISODES, only: list[str] | None = None,
          workers: int | None = None) -> dict:  # fmt: skip
    """Train, evaluate, calibrate and register one adapter per non-daylight domain in `out_dir`
    (the library; registration is atomic and replaces the previous adapter of that id).
    `workers`: domains trained at once, one thread each (default: 2 where there are 2 cores);
    the longest recipes start first."""
    from s1s2 import repo_root

    from .finetune import FinetuneConfig

    out_dir = Path(out_dir)
    base_dir = Path(base_dir) if base_dir else repo_root() / "models" / "sim_vlm"
    recipe = dict(SHIPPED, seed=seed, **({"steps": steps} if steps else {}))
    cfg = FinetuneConfig(**recipe)
    workers = default_workers() if workers is None else workers
    t0 = time.monotonic()
    names = only or domains()
    jobs = []
    for domain in names:
        fields, episodes, modes = recipe_of(domain, recipe, train_episodes)
        fields |= {"steps": steps} if steps else {}  # an explicit step count wins over OVERRIDES
        jobs.append((domain, fields, episodes, modes, base_dir, out_dir))
    jobs.sort(key=lambda j: -j[1]["steps"] * j[2])  # longest first: the other worker takes the rest
    print(f"[adapters] {len(jobs)} domains, {workers} at a time: {', '.join(j[0] for j in jobs)}", flush=True)
    done = {d: (m, sec) for d, m, sec in run_jobs(train_one, jobs, workers)}
    recipes = {j[0]: j for j in jobs}
    per_domain: dict[str, dict] = {}
    for domain in names:
        m, sec = done[domain]
        _, fields, episodes, modes, _, _ = recipes[domain]
        per_domain[domain] = {
            "base_domain": {k: m["base_domain"].get(k) for k in KEEP},
            "adapter_domain": {k: m["adapter_domain"].get(k) for k in KEEP},
            "base_daylight": {k: m["base_daylight"].get(k) for k in KEEP},
            "adapter_daylight": {k: m["adapter_daylight"].get(k) for k in KEEP},
            "min_confidence": m.get("min_confidence"),
            # held-out domain frames at the adapter's own gate, as the planner serves it
            "adapter_domain_own_gate": m.get("adapter_domain_own_gate"),
            "latent_cosine": m.get("latent_cosine"),
            "trainable_parameters": m["trainable_parameters"],
            "adapter_bytes": m["adapter_bytes"],
            "train_s": m["train_s"],
            "steps": fields["steps"],
            "train_episodes": episodes,
            "modes": list(modes),
            "seconds": sec,
        }
    return {
        "trained": True,
        "command": "s1s2 models adapters",
        "data": (
            f"per domain: {train_episodes} training episodes of that lighting, unless OVERRIDES says otherwise "
            "(seeds 2000.. default, 102000.. dense) mixed with daylight frames at lambda 0.1; held-out test seeds 930000.. / 940000..; "
            "calibration seeds 500000.. / 510000.. (frames cached under runs/vlm_data, never committed)"
        ),
        "notes": (
            "QLoRA adapters on the NF4 base, one per non-daylight lighting domain, by `s1s2 planner finetune "
            f"--domain D --strategy {cfg.strategy} --rank {cfg.rank} --alpha {cfg.alpha} --mix {cfg.mix} "
            f"--steps {cfg.steps} --train-episodes {train_episodes}`; each carries its own min_confidence. "
            "daylight stays the B = 0 starter (the base model itself); frames normalised by the base card's "
            f"input colour constancy; per-domain departures (OVERRIDES): {overrides_note()}"
        ),
        "recipe": asdict(cfg) | {"train_episodes": train_episodes, "overrides": OVERRIDES},
        "metrics": {"domains": per_domain, "seconds": round(time.monotonic() - t0, 1), "workers": workers},
    }
