"""`s1s2 nightly`'s data path without training: recorded failures (MCAP, as failure_recorder writes
them) -> labelled frames that match the sim's own labels, a time split, the context features; and
a recording whose recorder was killed (no footer) still gives its records."""

import json

import numpy as np
import pytest
from rclpy.serialization import serialize_message

from s1s2 import topics

pytestmark = pytest.mark.node


def _record_day(path, n=12, seed=3):
    """n failure records from a running sim (frames 0.5 s apart), as failure_recorder writes them;
    returns the sim's own labelled rows of the same moments."""
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from adapter_manager.failure_node import FAILURE_TOPIC
    from adapter_manager.features import FEATURE_NAMES
    from conveyor_sim.cell import CellSim, SimConfig
    from conveyor_sim.expert import ExpertDriver
    from s1s2.mcap_io import RawMcapWriter
    from s1s2.ros import sec_to_stamp
    from s1s2_interfaces.msg import GroundTruth, ItemState, LightingContext
    from s1s2_training.vlm import data as dm

    sim = CellSim(SimConfig(seed=seed))
    drv = ExpertDriver(sim, 0.02)
    cam = sim.camera_info()
    w = RawMcapWriter(path)
    rows = []
    try:
        for _ in range(200):  # let items arrive
            drv.tick()
            sim.step(0.02)
        for k in range(n):
            for _ in range(25):
                drv.tick()
                sim.step(0.02)
            rows.append(dm.frame(sim, cam, seed, 128))
            img = sim.render()
            t = 100.0 + k
            stamp = sec_to_stamp(t, Time)
            im = Image(
                height=img.shape[0],
                width=img.shape[1],
                encoding="rgb8",
                step=3 * img.shape[1],
                data=img.tobytes(),
            )
            im.header.stamp = stamp
            gt = GroundTruth(belt_position=float(sim.belt_position()))
            gt.header.stamp = stamp
            for it in sim.ground_truth():
                qw, qx, qy, qz = (float(v) for v in it.quaternion)
                gt.items.append(ItemState(
                    item_id=it.item_id, class_label=it.class_label, bin_id=it.bin_id,
                    pose=Pose(position=Point(x=float(it.position[0]), y=float(it.position[1]), z=float(it.position[2])),
                              orientation=Quaternion(x=qx, y=qy, z=qz, w=qw)),
                    size=Vector3(x=float(it.size[0]), y=float(it.size[1]), z=float(it.size[2])),
                    on_belt=bool(it.on_belt), grasped=bool(it.grasped)))  # fmt: skip
            ctx = LightingContext(label="unknown", feature_names=list(FEATURE_NAMES),
                                  features=[float(k)] * len(FEATURE_NAMES))  # fmt: skip
            ns = int(t * 1e9)
            w.write(topics.CAMERA_IMAGE.name, topics.CAMERA_IMAGE.type, serialize_message(im), ns)
            w.write(topics.FRAME_GROUND_TRUTH.name, topics.FRAME_GROUND_TRUTH.type, serialize_message(gt), ns)
            w.write(topics.CONTEXT.name, topics.CONTEXT.type, serialize_message(ctx), ns)
            rec = {"kind": "low_confidence_plan", "stamp": t, "detail": {}, "labelled": True}
            w.write(FAILURE_TOPIC, "std_msgs/msg/String", serialize_message(String(data=json.dumps(rec))), ns)
    finally:
        w.close()
        sim.close()
    return rows


def test_recorded_failures_become_the_sims_labelled_frames(tmp_path):
    from s1s2_training.nightly import NightlyConfig, load_day

    rows = _record_day(tmp_path / "day.mcap")
    cfg = NightlyConfig(context="test_light", holdout=0.25, belt_speed=-1.0)
    train, test, ftr, fte, day = load_day([tmp_path], cfg, 128)
    assert day.records == 12 and day.labelled == 12 and day.kinds == {"low_confidence_plan": 12}
    assert len(train["label"]) == 9 and len(test["label"]) == 3  # the latest quarter is held out
    labels = np.concatenate([train["label"], test["label"]])
    want = np.array([r["label"] for r in rows])
    assert (want >= 0).any(), "the recorded day should contain frames with a target"
    np.testing.assert_array_equal(labels, want)
    uv = np.concatenate([train["uv"], test["uv"]])
    np.testing.assert_allclose(uv, np.stack([r["uv"] for r in rows]), atol=1e-3)  # pixels
    px = np.concatenate([train["pixels"], test["pixels"]]).astype(float)
    diff = np.abs(px - np.stack([r["pixels"] for r in rows])).mean(axis=(1, 2, 3))
    assert diff.max() < 3.0, diff  # the same scenes (two renders differ by the camera's sensor noise only)
    assert (
        ftr.shape[0] == 9 and fte.shape[0] == 3 and ftr[0, 0] == 0.0 and fte[-1, 0] == 11.0
    )  # in time order


def test_too_few_failures_and_bad_context_are_refused(tmp_path):
    from s1s2_training.nightly import NightlyConfig, load_day

    with pytest.raises(ValueError, match="not a valid adapter id"):
        NightlyConfig(context="../escape")
    with pytest.raises(FileNotFoundError, match="no failure recordings"):
        load_day([tmp_path], NightlyConfig(context="x"), 128)
    _record_day(tmp_path / "day.mcap", n=4)
    with pytest.raises(ValueError, match="only 4 labelled failures"):
        load_day([tmp_path], NightlyConfig(context="x"), 128)


def test_a_killed_recorders_file_still_reads(tmp_path):
    from adapter_manager.failure_node import read_failures

    _record_day(tmp_path / "day.mcap", n=5)
    data = (tmp_path / "day.mcap").read_bytes()
    cut = tmp_path / "killed.mcap"
    cut.write_bytes(data[: len(data) - 40])  # no footer: the recorder never called finish()
    warnings = []
    recs = read_failures([cut], warn=warnings.append)
    assert len(recs) == 5 and all(r["image"] is not None for r in recs)
    assert len(warnings) == 1 and "ends early" in warnings[0]


def test_cli_parses_and_reports_a_missing_recording(tmp_path, capsys):
    from s1s2_training.nightly import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "--max-general-drop-pts" in capsys.readouterr().out
    assert main(["--failures", str(tmp_path / "nowhere"), "--context", "night2"]) == 2
    assert "nowhere'] do not exist" in capsys.readouterr().err
    assert main(["--failures", str(tmp_path), "--context", "night2"]) == 2
    assert "no failure recordings" in capsys.readouterr().err
    assert main(["--failures", str(tmp_path), "--context", "bad/id"]) == 2
    assert "not a valid adapter id" in capsys.readouterr().err


def _lines(sheet):
    return [json.loads(t) for t in (sheet / "metadata.jsonl").read_text().splitlines()]


def _write_lines(sheet, lines):
    (sheet / "metadata.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


def test_a_sheet_filled_from_the_truth_gives_the_ground_truths_labels(tmp_path):
    """The operator path (sheet -> labels) trains on what the automatic one derives from ground
    truth: same frames, classes, pick pixels and, on the belt plane, pick points."""
    import cv2

    from s1s2_training.label_sheet import write_sheet
    from s1s2_training.nightly import NightlyConfig, load_day

    _record_day(tmp_path / "day" / "day.mcap")
    r = write_sheet([tmp_path / "day"], tmp_path / "sheet", prefill_truth=True)
    assert r["frames"] == 12 and r["prefilled"] == 12
    lines = _lines(tmp_path / "sheet")
    assert {x["label"] for x in lines} - {"none"}, "the day should hold frames with a target"
    img = cv2.imread(str(tmp_path / "sheet" / lines[0]["file_name"]))
    assert img.shape == (240, 320, 3)
    cfg = NightlyConfig(context="test_light", holdout=0.25)
    truth = load_day([tmp_path / "day"], cfg, 128)
    sheet = load_day([tmp_path / "day"], cfg, 128, labels=tmp_path / "sheet" / "metadata.jsonl")
    assert sheet[4].labelled == 12 and sheet[4].labels.endswith("metadata.jsonl")
    for a, b in zip(truth[:2], sheet[:2], strict=True):
        np.testing.assert_array_equal(a["label"], b["label"])
        np.testing.assert_array_equal(a["pixels"], b["pixels"])  # PNG is lossless
        np.testing.assert_allclose(a["uv"], b["uv"], atol=1e-3)
        tgt = a["label"] >= 0
        np.testing.assert_allclose(a["pick"][tgt, :2], b["pick"][tgt, :2], atol=1e-4)  # metres


def test_a_sheet_takes_only_labelled_lines_and_names_a_bad_one(tmp_path, capsys):
    from s1s2_training.label_sheet import write_sheet
    from s1s2_training.nightly import NightlyConfig, load_day, main

    _record_day(tmp_path / "day" / "day.mcap")
    assert main(["sheet", "--failures", str(tmp_path / "day"), "--out", str(tmp_path / "sheet")]) == 0
    assert '"frames": 12' in capsys.readouterr().out
    assert main(["sheet", "--failures", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s2")]) == 2
    assert "nowhere'] do not exist" in capsys.readouterr().err and not (tmp_path / "s2").exists()
    with pytest.raises(FileExistsError, match="never overwritten"):  # it may hold a person's labels
        write_sheet([tmp_path / "day"], tmp_path / "sheet")
    sheet, cfg = tmp_path / "sheet", NightlyConfig(context="x", holdout=0.25)
    lines = _lines(sheet)
    assert all(x["label"] is None and x["u"] is None for x in lines)
    with pytest.raises(ValueError, match="only 0 labelled failures"):  # nothing filled in yet
        load_day([tmp_path / "day"], cfg, 128, labels=sheet / "metadata.jsonl")
    for x in lines[:10]:
        x.update(label="none")
    lines[3].update(label="pet_bottle", u=160.5, v=120)
    _write_lines(sheet, lines)
    train, test, *_, day = load_day([tmp_path / "day"], cfg, 128, labels=sheet / "metadata.jsonl")
    assert day.labelled == 10 and len(train["label"]) + len(test["label"]) == 10  # two left null
    assert (np.concatenate([train["label"], test["label"]]) >= 0).sum() == 1
    bad = [
        ({"label": "banana"}, "label 'banana' is not one of"),
        ({"label": "pet_bottle", "u": None}, "u None must be a pixel of the 320x240 image"),
        ({"label": "pet_bottle", "u": 3.0, "v": 240}, "v 240 must be a pixel"),
        ({"label": "pet_bottle", "u": float("nan"), "v": 3}, "u nan must be a pixel"),
        ({"stamp": "noon"}, "stamp 'noon' is not a number"),
        ({"stamp": lines[0]["stamp"]}, "labelled twice"),
        ({"stamp": 5.0}, "match no failure record"),
    ]
    for change, message in bad:
        edited = [dict(x) for x in lines]
        edited[4].update(change)
        _write_lines(sheet, edited)
        with pytest.raises(ValueError, match=message) as e:
            load_day([tmp_path / "day"], cfg, 128, labels=sheet / "metadata.jsonl")
        if "stamp" not in change or change["stamp"] != 5.0:
            assert "metadata.jsonl:5" in str(e.value)  # names the line
    (sheet / "metadata.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="metadata.jsonl:1: not JSON"):
        load_day([tmp_path / "day"], cfg, 128, labels=sheet / "metadata.jsonl")
    with pytest.raises(FileNotFoundError, match="label sheet"):
        load_day([tmp_path / "day"], cfg, 128, labels=tmp_path / "nowhere.jsonl")
