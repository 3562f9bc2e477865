"""ROS 2 message contents as plain dicts (the field layout of the real messages), for writing
MCAP files with mcap_ros2 without rclpy (definitions: s1s2.mcap_io.message_definition)."""

from __future__ import annotations

import numpy as np

from s1s2 import topics as tp


def stamp(t: float) -> dict:
    sec = int(t)
    return {"sec": sec, "nanosec": int(round((t - sec) * 1e9)) % 1_000_000_000}


def header(t: float, frame_id: str) -> dict:
    return {"stamp": stamp(t), "frame_id": frame_id}


def image(img: np.ndarray, t: float, frame_id: str) -> dict:
    h, w = img.shape[:2]
    return {
        "header": header(t, frame_id),
        "height": h,
        "width": w,
        "encoding": "rgb8",
        "is_bigendian": 0,
        "step": 3 * w,
        "data": np.ascontiguousarray(img, dtype=np.uint8).tobytes(),
    }


def camera_info(info, t: float) -> dict:
    k = np.asarray(info.K, dtype=float)
    p = np.zeros((3, 4))
    p[:, :3] = k
    return {
        "header": header(t, info.frame_id),
        "height": info.height,
        "width": info.width,
        "distortion_model": "plumb_bob",
        "d": [0.0] * 5,
        "k": k.reshape(-1).tolist(),
        "r": np.eye(3).reshape(-1).tolist(),
        "p": p.reshape(-1).tolist(),
        "binning_x": 0,
        "binning_y": 0,
        "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
    }


def joint_state(names, pos, vel, t: float, frame_id: str = "") -> dict:
    return {
        "header": header(t, frame_id),
        "name": list(names),
        "position": [float(v) for v in pos],
        "velocity": [float(v) for v in vel],
        "effort": [],
    }


def pose(p, q_wxyz=(1.0, 0.0, 0.0, 0.0)) -> dict:
    w, x, y, z = (float(v) for v in q_wxyz)
    return {
        "position": {"x": float(p[0]), "y": float(p[1]), "z": float(p[2])},
        "orientation": {"x": x, "y": y, "z": z, "w": w},
    }


def ground_truth(items, belt_position: float, t: float, frame_id: str) -> dict:
    return {
        "header": header(t, frame_id),
        "belt_position": float(belt_position),
        "items": [
            {
                "item_id": it.item_id,
                "class_label": it.class_label,
                "bin_id": it.bin_id,
                "pose": pose(it.position, it.quaternion),
                "size": {"x": float(it.size[0]), "y": float(it.size[1]), "z": float(it.size[2])},
                "on_belt": bool(it.on_belt),
                "grasped": bool(it.grasped),
            }
            for it in items
        ],
    }


def sort_event(ev, frame_id: str) -> dict:
    return {
        "header": header(ev.time, frame_id),
        "item_id": ev.item_id,
        "class_label": ev.class_label,
        "bin_id": ev.bin_id,
        "outcome": int(ev.outcome),
        "correct": bool(ev.correct),
        "lighting_domain": ev.lighting_domain,
    }


def float64_multiarray(values, label: str = "joints") -> dict:
    vals = [float(v) for v in values]
    return {
        "layout": {"dim": [{"label": label, "size": len(vals), "stride": len(vals)}], "data_offset": 0},
        "data": vals,
    }


def bool_msg(v: bool) -> dict:
    return {"data": bool(v)}


def goal(
    t: float,
    plan_id: str,
    target_label: str,
    target_point,
    place_point,
    bin_id: str,
    latent,
    instruction: str = "",
    valid_for_s: float = 2.0,
    model_id: str = "scripted_expert",
) -> dict:
    """A Goal in the world frame (the expert's oracle target when recording demonstrations)."""
    return {
        "header": header(t, tp.WORLD_FRAME),
        "plan_id": plan_id,
        "instruction": instruction,
        "target_label": target_label,
        "target_pose": pose(target_point if target_point is not None else (0.0, 0.0, 0.0)),
        "place_pose": pose(place_point if place_point is not None else (0.0, 0.0, 0.0)),
        "bin_id": bin_id,
        "latent": [float(v) for v in latent],
        "confidence": 1.0 if target_label else 0.0,
        "valid_for": {"sec": int(valid_for_s), "nanosec": int((valid_for_s % 1) * 1e9)},
        "adapter_id": "",
        "model_id": model_id,
    }
