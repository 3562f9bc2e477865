"""Episode rollouts in worker processes (spawned: no torch state is forked), one CellSim and one
ONNX session per worker, reused across tasks."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor

_SIM = None
_SESSIONS: dict = {}


def worker_sim():
    global _SIM
    if _SIM is None:
        from s1s2_training.policy.rollout import make_sim

        _SIM = make_sim()
    return _SIM


def worker_session(model_path: str):
    """PolicySession for model_path, cached per worker (the file's mtime is part of the key)."""
    from fast_policy.runtime import PolicySession

    key = (model_path, os.path.getmtime(model_path))
    if key not in _SESSIONS:
        _SESSIONS.clear()
        _SESSIONS[key] = PolicySession(model_path, log=lambda _m: None)
    return _SESSIONS[key]


def _init():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with contextlib.suppress(OSError):
        os.nice(0)


def make_pool(workers: int) -> ProcessPoolExecutor | None:
    """None for workers <= 1 (run in-process)."""
    if workers <= 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_init)


def _timed(fn, task):
    import time

    c0 = time.process_time()
    r = fn(task)
    return r, time.process_time() - c0


CPU_SECONDS = {"tasks": 0.0}  # CPU seconds spent in tasks (all workers), for idle-machine estimates


def run_tasks(fn, tasks: list, pool: ProcessPoolExecutor | None, progress: bool, desc: str) -> list:
    """fn(task) for every task, in order, with a tqdm bar; in-process when pool is None. Adds the
    tasks' CPU seconds to CPU_SECONDS["tasks"]."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=desc, unit="ep", disable=not progress, dynamic_ncols=True)
    out = []
    try:
        if pool is None:
            for t in tasks:
                r, c = _timed(fn, t)
                out.append(r)
                CPU_SECONDS["tasks"] += c
                bar.update()
        else:
            futs = [pool.submit(_timed, fn, t) for t in tasks]
            for f in futs:
                r, c = f.result()
                out.append(r)
                CPU_SECONDS["tasks"] += c
                bar.update()
    finally:
        bar.close()
    return out
