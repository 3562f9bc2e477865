"""The real QLoRA loading path on the committed tiny VLM, the plan output, and adapter hot-swap."""

import json
import shutil

import numpy as np
import pytest

from s1s2 import repo_root
from s1s2.params import ConfigError
from s1s2.topics import LATENT_DIM
from vlm_planner.config import PlannerConfig
from vlm_planner.geometry import CameraModel
from vlm_planner.planner import Planner

MODEL = repo_root() / "models" / "sim_vlm"
ADAPTERS = repo_root() / "models" / "adapters"
K = [200.0, 0.0, 160.0, 0.0, 200.0, 120.0, 0.0, 0.0, 1.0]


def _reregister(path):
    from s1s2.adapters import read_manifest, write_manifest

    m = read_manifest(path)
    fields = {k: v for k, v in m.__dict__.items() if k not in ("files", "format")}
    write_manifest(path, **(fields | {"adapter_id": path.name}))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The committed starter library plus a LoRA with non-zero B, a corrupt one and a half-written one."""
    import torch
    from safetensors.torch import load_file, save_file

    lib = tmp_path_factory.mktemp("adapters")
    for name in ("daylight", "overcast_dim", "night_noise"):
        shutil.copytree(ADAPTERS / name, lib / name)
    shutil.copytree(ADAPTERS / "daylight", lib / "perturbed")
    weights = load_file(str(lib / "perturbed" / "adapter_model.safetensors"))
    g = torch.Generator().manual_seed(0)
    for k in weights:
        if "lora_B" in k:  # B != 0: the adapter now changes the model's output
            weights[k] = torch.randn(weights[k].shape, generator=g) * 0.5
    save_file(weights, str(lib / "perturbed" / "adapter_model.safetensors"))
    _reregister(lib / "perturbed")  # a new adapter: its manifest hashes its own weights
    shutil.copytree(ADAPTERS / "daylight", lib / "corrupt")
    _reregister(lib / "corrupt")
    raw = (lib / "corrupt" / "adapter_model.safetensors").read_bytes()
    (lib / "corrupt" / "adapter_model.safetensors").write_bytes(raw[: len(raw) // 2])
    shutil.copytree(ADAPTERS / "daylight", lib / "bad_config")
    _reregister(lib / "bad_config")
    (lib / "bad_config" / "adapter_config.json").write_text("{not json")
    return lib


@pytest.fixture(scope="module")
def planner(library):
    # cold start: these tests follow the LRU set swap by swap (warm slots: test_warm_adapter_slots...),
    # and single plans (two-plan confirmation, confirm_pick_cm: its own test)
    return Planner(
        PlannerConfig(
            adapter_library=str(library),
            max_resident_adapters=2,
            warm_adapter_slots=False,
            confirm_pick_cm=0.0,
        )
    )


@pytest.fixture
def camera():
    return CameraModel.from_camera_info(K, 320, 240)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def test_4bit_load_uses_bnb_linear4bit_nf4_double_quant(planner):
    import bitsandbytes as bnb

    layers = [m for m in planner.vlm.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == planner.vlm.linear4bit > 0
    for layer in layers:
        state = layer.weight.quant_state
        assert state.quant_type == "nf4"
        assert state.nested  # double quantization: the absmax scales are quantised too
        assert layer.weight.dtype.itemsize == 1  # packed 4-bit in uint8
    # Both the language model and the vision tower are quantised.
    names = [n for n, m in planner.vlm.model.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert any("language_model" in n for n in names) and any("vision_tower" in n for n in names)


def test_4bit_footprint_is_smaller_than_fp32(planner):
    fp32 = Planner(PlannerConfig(quantization="none", adapter_library=""))
    assert fp32.vlm.linear4bit == 0
    assert planner.vlm.footprint_bytes < 0.6 * fp32.vlm.footprint_bytes
    from vlm_planner.model import linear4bit_bytes

    packed, full = linear4bit_bytes(planner.vlm.model)
    # NF4 is 4 bits a weight; double quantization keeps the scales to well under 0.5 bit a weight.
    assert 0.125 <= packed / full < 0.14


def test_wrong_model_path_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"'model_id'.*'models/no_such_vlm'"):
        Planner(PlannerConfig(model_id="models/no_such_vlm"))
    with pytest.raises(ConfigError, match=r"'model_id'.*someone/missing-model.*allow_download"):
        Planner(PlannerConfig(model_id="someone/missing-model"))  # offline: not in the HF cache


def test_folder_without_config_and_missing_library_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"'model_id'.*config\.json"):
        Planner(PlannerConfig(model_id=str(tmp_path)))
    with pytest.raises(ConfigError, match=r"'adapter_library'.*nowhere"):
        Planner(PlannerConfig(adapter_library=str(tmp_path / "nowhere")))


def test_unknown_initial_adapter_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'initial_adapter'.*'sunset'.*daylight"):
        Planner(PlannerConfig(initial_adapter="sunset"))


def test_noise_image_plans_with_a_32d_latent(planner, camera, image):
    r = planner.plan(image, "sort the recyclables", 12.5, 0.3, camera)
    assert r.latent.shape == (LATENT_DIM,) and r.latent.dtype == np.float32
    assert np.all(np.isfinite(r.latent)) and np.linalg.norm(r.latent) == pytest.approx(1.0, abs=1e-5)
    # A noise image: a hold (confidence 0, a reason), or a target only above min_confidence.
    if r.target_label == "":
        assert r.confidence == 0.0 and r.reason and r.target_belt is None and r.bin_id == ""
    else:
        assert r.confidence >= planner.min_confidence and r.reason == ""
    assert r.stamp == 12.5 and r.model_id == "models/sim_vlm"
    assert r.inference_s > 0 and isinstance(r.raw_text, str)
    again = planner.plan(image, "sort the recyclables", 13.0, 0.3, camera)
    np.testing.assert_allclose(again.latent, r.latent, atol=1e-5)  # deterministic
    other = planner.plan(image, "only glass bottles please", 13.0, 0.3, camera)
    assert not np.allclose(other.latent, r.latent, atol=1e-3)  # the instruction is in the latent


def test_bad_image_raises_value_error(planner, camera):
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        planner.plan(np.zeros((240, 320), np.uint8), "x", 0.0, 0.0, camera)
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        planner.plan(np.zeros((240, 320, 3), np.float32), "x", 0.0, 0.0, camera)


def test_parsed_answer_becomes_a_belt_frame_target(planner, camera, image, monkeypatch):
    """Plumbing past the model: a well-formed answer -> belt-frame pick, bin and place pose."""
    real = planner._infer

    answer = ["label=aluminium_can u=260 v=60"]

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = answer[0], 0.999
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    r = planner.plan(image, "sort the recyclables", 5.0, 0.25, camera)
    assert r.target_label == "aluminium_can" and r.bin_id == "metal" and r.confidence == pytest.approx(0.999)
    # Camera above (0, -0.45, 1.8); plane z = 0.3 is 1.5 m away; f = 200 px: 60 px up = 0.45 m to +y.
    # x, y where the pixel's ray meets the belt plane; z on the item: the class's nominal top
    top = 0.3 + 2.0 * planner.cell.item_class("aluminium_can").half_height()
    np.testing.assert_allclose(r.target_world, [0.75, 0.0, top], atol=1e-9)
    np.testing.assert_allclose(r.target_belt, [0.75 - 0.25, 0.0, top], atol=1e-9)
    assert top > 0.3
    metal = planner.cell.bin("metal")
    np.testing.assert_allclose(r.place_world[:2], metal.center)
    assert r.place_world[2] > metal.size[2]
    # Without odometry at the image stamp there is no belt-frame target.
    r2 = planner.plan(image, "sort the recyclables", 5.0, None, camera)
    assert r2.target_label == "" and "odometry" in r2.reason and r2.confidence == 0.0
    # A pixel that sees the floor next to the belt is not a pick.
    answer[0] = "label=aluminium_can u=260 v=160"
    r3 = planner.plan(image, "sort the recyclables", 5.0, 0.25, camera)
    assert r3.target_label == "" and "off the belt" in r3.reason


def test_swap_known_unknown_and_base(planner, camera, image):
    assert planner.active_adapter == ""
    res = planner.swap_adapter("daylight")
    assert res.success and res.active_adapter == "daylight" and res.loaded_from_disk
    assert res.swap_time_ms > 0
    r = planner.plan(image, "sort the recyclables", 1.0, 0.0, camera)
    assert r.adapter_id == "daylight"
    res = planner.swap_adapter("sunset")
    assert not res.success and "'sunset'" in res.message and "daylight" in res.message
    assert "overcast_dim" in res.message  # lists the library
    assert planner.active_adapter == "daylight"
    res = planner.swap_adapter("")
    assert res.success and planner.active_adapter == ""
    assert planner.plan(image, "sort the recyclables", 1.0, 0.0, camera).adapter_id == ""


def test_a_5000_character_id_is_refused_before_the_filesystem(planner, monkeypatch):
    import pathlib

    assert planner.swap_adapter("overcast_dim").success

    def no_fs(*a, **k):  # any filesystem probe with the bad id would land here
        raise AssertionError("filesystem touched with an invalid adapter id")

    monkeypatch.setattr(pathlib.Path, "is_file", no_fs)
    monkeypatch.setattr(pathlib.Path, "is_dir", no_fs)
    res = planner.swap_adapter("x" * 5000)
    monkeypatch.undo()
    assert not res.success and "5000 characters" in res.message and len(res.message) < 300
    assert planner.active_adapter == "overcast_dim"


def test_preload_loads_without_activating_and_the_swap_is_then_resident(planner, camera, image):
    assert planner.swap_adapter("daylight").success
    res = planner.swap_adapter("night_noise", preload=True)
    assert res.success and res.loaded_from_disk and res.active_adapter == "daylight" == planner.active_adapter
    assert "night_noise" in planner.resident_adapters and "preloaded" in res.message
    assert planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).adapter_id == "daylight"
    swap = planner.swap_adapter("night_noise")
    assert swap.success and not swap.loaded_from_disk  # resident already
    assert not planner.swap_adapter("nope", preload=True).success and planner.active_adapter == "night_noise"


def test_lru_keeps_at_most_n_resident(planner):
    for name in ("daylight", "overcast_dim", "night_noise"):
        assert planner.swap_adapter(name).success
    assert planner.resident_adapters == ["overcast_dim", "night_noise"]  # daylight evicted (N = 2)
    res = planner.swap_adapter("overcast_dim")
    assert res.success and not res.loaded_from_disk  # resident: set_adapter only


def test_a_disk_swap_into_a_reused_slot_plans_what_a_fresh_load_plans(library, camera, image):
    """With the resident set full, an adapter of the same LoRA layout is copied into the least
    recently used slot (no peft module surgery): it plans exactly what a planner that loaded it
    through peft plans (same process, same fp32 kernels). Another layout gets a new peft slot."""
    p = Planner(
        PlannerConfig(adapter_library=str(library), max_resident_adapters=1, warm_adapter_slots=False)
    )
    assert p.swap_adapter("daylight").success  # the first slot: built by peft
    res = p.swap_adapter("perturbed")  # daylight's layout: in place into its slot
    assert res.success and res.loaded_from_disk and res.evicted == ["daylight"] and "in place" in res.message
    assert res.in_place
    assert p.resident_adapters == ["perturbed"] == list(p.switcher.slots)
    got = p.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent
    fresh = Planner(
        PlannerConfig(adapter_library=str(library), initial_adapter="perturbed", warm_adapter_slots=False)
    )
    np.testing.assert_array_equal(fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, got)
    res = p.swap_adapter("overcast_dim")  # projector+vision: another layout, a new slot
    assert res.success and res.loaded_from_disk and "in place" not in res.message and not res.in_place
    assert res.evicted == ["perturbed"] and len(p.switcher.peft.peft_config) == 1
    p.swap_adapter("")
    base = p.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent
    assert p.swap_adapter("night_noise").success  # in place into overcast_dim's slot
    np.testing.assert_array_equal(fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, got)
    fresh.swap_adapter("night_noise")
    np.testing.assert_array_equal(
        p.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent,
        fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent,
    )
    assert not np.array_equal(p.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, base)


def test_weights_changed_after_verification_are_not_loaded_in_place(library, camera, image, monkeypatch):
    """The in-place copy hashes the very bytes it loads: a file replaced between the check and the
    read is refused, and the active adapter stays."""
    import pathlib

    p = Planner(
        PlannerConfig(adapter_library=str(library), max_resident_adapters=1, warm_adapter_slots=False)
    )
    assert p.swap_adapter("daylight").success
    real = pathlib.Path.read_bytes
    monkeypatch.setattr(pathlib.Path, "read_bytes", lambda self: real(self)[:-1] + b" ")
    res = p.swap_adapter("perturbed")
    monkeypatch.undo()
    assert not res.success and "changed on disk" in res.message
    assert p.active_adapter == "daylight" == res.active_adapter and p.resident_adapters == ["daylight"]
    assert p.plan(image, "sort the recyclables", 0.0, 0.0, camera).adapter_id == "daylight"


def _nf4_state(model) -> dict:
    import bitsandbytes as bnb

    out = {}
    for name, m in model.named_modules():
        if isinstance(m, bnb.nn.Linear4bit):
            qs = m.weight.quant_state
            out[name.replace(".base_layer", "").replace("base_model.model.", "")] = (
                m.weight.data.clone(),
                qs.absmax.clone(),
                qs.nested,
                qs.dtype,
            )
    return out


def test_adapter_really_changes_the_model_and_base_disables_it(planner, camera, image):
    """The lecture's promise, by construction: with B = 0 the LoRA branch adds exactly +0.0 to each
    float32 output (compute_dtype float32), so the plan is bit-identical to the base model's on any
    x86 CPU: no tolerance. (On AVX512-BF16 CPUs bitsandbytes used to repack the NF4 weights with
    bf16 scales and re-quantise them on every adapter load; vlm_planner.model.pin_4bit_reference_kernel.)
    A perturbed B must move the unit-norm latent by far more than float32 noise (~1e-6)."""
    planner.swap_adapter("")
    base = planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent
    planner.swap_adapter("daylight")  # B = 0, loaded from disk
    np.testing.assert_array_equal(planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, base)
    assert planner.swap_adapter("perturbed").success
    pert = planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent
    assert not np.allclose(pert, base, atol=1e-3)
    planner.swap_adapter("")
    np.testing.assert_array_equal(planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, base)


def test_adapter_loads_never_change_the_frozen_nf4_weights(library, camera, image):
    """Plans and adapter loads leave the packed NF4 weights, their (double-quantised) scales and
    their dtype untouched, and a freshly loaded planner plans exactly what one that has loaded
    and evicted adapters plans."""
    fresh = Planner(
        PlannerConfig(adapter_library=str(library), max_resident_adapters=1, warm_adapter_slots=False)
    )
    first = fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent
    before = _nf4_state(fresh.vlm.model)
    assert all(not m.support_avx512bf16_for_cpu for m in _linear4bit(fresh.vlm.model))
    for name in ("daylight", "overcast_dim", "night_noise", ""):
        assert fresh.swap_adapter(name).success
        fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera)
    after = _nf4_state(fresh.switcher.model)
    assert before.keys() == after.keys() and before
    for name, (w, absmax, nested, dtype) in before.items():
        w2, absmax2, nested2, dtype2 = after[name]
        assert torch_equal(w, w2) and torch_equal(absmax, absmax2), name
        assert nested and nested2 and dtype == dtype2, name
    np.testing.assert_array_equal(fresh.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent, first)


def _linear4bit(model):
    import bitsandbytes as bnb

    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def torch_equal(a, b) -> bool:
    import torch

    return a.shape == b.shape and bool(torch.equal(a, b))


@pytest.mark.parametrize("name, why", [("corrupt", "fails its hash"), ("bad_config", "adapter_config")])
def test_broken_adapter_is_refused_and_previous_stays_active(planner, camera, image, name, why):
    assert planner.swap_adapter("overcast_dim").success
    res = planner.swap_adapter(name)
    assert not res.success and f"'{name}'" in res.message and why in res.message
    assert res.active_adapter == "overcast_dim" == planner.active_adapter
    assert name not in planner.resident_adapters
    assert planner.plan(image, "sort the recyclables", 0.0, 0.0, camera).adapter_id == "overcast_dim"


def test_committed_artifacts_say_what_is_trained_and_use_the_pil_processor():
    from transformers import AutoProcessor

    from s1s2.adapters import base_fingerprint, verify_adapter

    card = json.loads((MODEL / "s1s2_vlm.json").read_text())
    assert isinstance(card["trained"], bool)
    if card["trained"]:  # a trained model carries its calibration and its training record
        assert "confidence_calibration" in card and "data" in card
    fp = base_fingerprint(MODEL)
    for d in ADAPTERS.iterdir():
        m = verify_adapter(d, expected_base=fp)  # every shipped adapter is for this base
        assert m.trained is (m.strategy != "starter")
        if m.trained:  # a trained adapter says what it was measured at
            assert {"base_domain", "adapter_domain", "adapter_daylight"} <= set(m.metrics)
        cfg = json.loads((d / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA"
    proc = AutoProcessor.from_pretrained(str(MODEL), local_files_only=True, backend="pil")
    assert type(proc.image_processor).__name__.endswith("Pil")
    assert {d.name for d in ADAPTERS.iterdir()} >= {
        "daylight",
        "overcast_dim",
        "warm_tungsten",
        "cold_fluorescent_flicker",
        "low_sun_glare",
        "night_noise",
    }


def test_swap_waits_for_a_running_inference(planner, camera, image, monkeypatch):
    """A swap requested mid-inference happens after it: the plan is made with one adapter only."""
    import threading
    import time

    assert planner.swap_adapter("daylight").success
    model = planner.switcher.model
    real_generate = model.generate
    events = []
    started = threading.Event()

    def slow_generate(*args, **kwargs):
        started.set()
        events.append(("generate_start", planner.active_adapter))
        time.sleep(0.5)
        out = real_generate(*args, **kwargs)
        events.append(("generate_end", planner.active_adapter))
        return out

    monkeypatch.setattr(model, "generate", slow_generate)
    result = {}
    worker = threading.Thread(
        target=lambda: result.update(r=planner.plan(image, "sort the recyclables", 0.0, 0.0, camera))
    )
    worker.start()
    assert started.wait(30)
    swap = planner.swap_adapter("overcast_dim")
    events.append(("swapped", planner.active_adapter))
    worker.join(60)
    assert swap.success
    assert swap.swap_time_ms >= 300  # it waited for the inference (0.5 s sleep, started before)
    assert [e[0] for e in events] == ["generate_start", "generate_end", "swapped"]
    assert events[0][1] == events[1][1] == "daylight"
    assert result["r"].adapter_id == "daylight" and planner.active_adapter == "overcast_dim"


def test_a_plan_that_waits_for_a_swap_is_counted(planner, camera, image):
    """Swaps and inference share one lock: a plan that starts while a swap holds it is counted, with
    its wait, so a shift day can show how many plan cycles the swaps delayed."""
    import threading
    import time

    n0 = planner.plans_waited_for_swap
    planner.plan(image, "sort the recyclables", 0.0, 0.0, camera)
    assert planner.plans_waited_for_swap == n0  # nothing held the lock
    held = threading.Event()

    def swap_in_progress():  # what swap_adapter does while it loads
        with planner._lock:
            held.set()
            time.sleep(0.2)

    t = threading.Thread(target=swap_in_progress)
    t.start()
    assert held.wait(10)
    planner.plan(image, "sort the recyclables", 0.0, 0.0, camera)
    t.join()
    assert planner.plans_waited_for_swap == n0 + 1 and planner.swap_wait_ms_max >= 100


def test_warm_adapter_slots_fill_the_resident_set_and_later_disk_swaps_copy_in_place(
    library, tmp_path, camera, image
):
    """warm_adapter_slots (default): at start the planner loads the library's adapters of its most
    common LoRA layout until the resident set is full (one that fails verification is skipped and
    logged), the base model stays active and plans exactly what a cold planner plans, and the first
    swap from disk of that layout is an in-place copy, not a new peft slot."""
    from safetensors.torch import load_file, save_file

    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("corrupt", "daylight", "overcast_dim", "perturbed"):
        shutil.copytree(library / name, lib / name)
    shutil.copytree(library / "perturbed", lib / "zz_other")
    w = load_file(str(lib / "zz_other" / "adapter_model.safetensors"))
    save_file(
        {k: v * 2 if "lora_B" in k else v for k, v in w.items()},
        str(lib / "zz_other" / "adapter_model.safetensors"),
    )
    _reregister(lib / "zz_other")
    logs = []
    warm = Planner(
        PlannerConfig(adapter_library=str(lib), max_resident_adapters=2, warm_adapter_slots=True),
        log=logs.append,
    )
    # corrupt, daylight, perturbed, zz_other share the starter layout (overcast_dim is projector+vision)
    assert warm.resident_adapters == ["daylight", "perturbed"] and warm.active_adapter == ""
    assert any("skipped 'corrupt'" in m for m in logs) and any("warm adapter slots" in m for m in logs)
    cold = Planner(PlannerConfig(adapter_library=str(lib), warm_adapter_slots=False))
    assert cold.resident_adapters == []
    np.testing.assert_array_equal(
        warm.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent,
        cold.plan(image, "sort the recyclables", 0.0, 0.0, camera).latent,
    )
    # with the base model active the LoRA layers are switched off once, not per plan
    assert warm.switcher.peft.get_model_status().enabled is False
    res = warm.swap_adapter("zz_other")
    assert res.success and res.loaded_from_disk and res.in_place and res.evicted == ["daylight"]
    assert warm.switcher.peft.get_model_status().enabled is True
    assert len(warm.switcher.peft.peft_config) == 2  # no new slot


def _scripted_answers(planner, monkeypatch) -> list:
    """The planner's model answers what the returned [text, confidence] list holds at each plan."""
    real = planner._infer
    answer = ["label=aluminium_can u=260 v=60", 0.999]

    def fake(img, prompt):
        inf = real(img, prompt)
        inf.text, inf.confidence = answer
        return inf

    monkeypatch.setattr(planner, "_infer", fake)
    return answer


def test_confirm_pick_cm_publishes_a_pick_only_when_two_consecutive_plans_agree(
    planner, camera, image, monkeypatch
):
    """confirm_pick_cm > 0: the first plan of a pick is a hold; the next plan confirms it when it
    names the same class within the distance on the belt (the belt moved between the images: the
    world pixel moves with it); another class, a far point, a gap or a parse failure in between
    do not confirm. Off by default (the card's gate)."""
    import dataclasses

    answer = _scripted_answers(planner, monkeypatch)
    assert PlannerConfig().confirm_pick_cm == 0.0 and PlannerConfig().card_min_confidence  # the defaults
    monkeypatch.setattr(planner, "config", dataclasses.replace(planner.config, confirm_pick_cm=3.0))
    monkeypatch.setattr(planner, "min_confidence", 0.5)
    planner._last_pick = planner._confirmed_stamp = None
    first = planner.plan(image, "sort the recyclables", 5.0, 0.25, camera)
    assert first.target_label == "" and "awaits confirmation" in first.reason and first.target_belt is None
    assert first.publish  # nothing confirmed yet: the hold is published
    # 1 s later the belt moved 0.1 m and so did the item: 0.1 m / (1.5 m / 200 px) = 13.3 px
    answer[0] = "label=aluminium_can u=273 v=60"
    second = planner.plan(image, "sort the recyclables", 6.0, 0.35, camera)
    assert second.target_label == "aluminium_can" and second.reason == "" and second.confidence > 0.9
    answer[0] = "label=pet_bottle u=286 v=60"
    other = planner.plan(image, "sort the recyclables", 7.0, 0.45, camera)
    assert other.target_label == "" and "previous plan picked aluminium_can" in other.reason
    assert not other.publish  # the pick confirmed 1 s ago stands: no hold that would cancel it
    answer[0] = "label=pet_bottle u=200 v=60"  # same class, 0.6 m away on the belt
    far = planner.plan(image, "sort the recyclables", 8.0, 0.55, camera)
    assert far.target_label == "" and "cm from the previous plan" in far.reason and not far.publish
    answer[0] = "label=pet_bottle u=200 v=60"
    late = planner.plan(image, "sort the recyclables", 12.0, 0.55, camera)  # 4 s > valid_for_s later
    assert late.target_label == "" and "awaits confirmation" in late.reason
    assert late.publish  # the confirmed goal (stamp 6.0) expired at 9.0
    answer[0] = "no parse"
    assert planner.plan(image, "sort the recyclables", 13.0, 0.55, camera).target_label == ""
    answer[0] = "label=pet_bottle u=200 v=60"
    after = planner.plan(image, "sort the recyclables", 14.0, 0.55, camera)
    assert after.target_label == "" and "awaits confirmation" in after.reason
    answer[1] = 0.1  # below min_confidence: a hold, though it agrees with the previous plan
    low = planner.plan(image, "sort the recyclables", 15.0, 0.55, camera)
    assert low.target_label == "" and "below min_confidence" in low.reason and low.publish
    planner._last_pick = planner._confirmed_stamp = None


def test_gate_keeps_goal_resends_a_standing_pick_until_it_expires(planner, camera, image, monkeypatch):
    """gate_keeps_goal: a plan under min_confidence, while the last new pick (same adapter) is
    still valid, re-sends that pick (target, bin, latent, confidence) on the new image's stamp with
    valid_for cut so that it expires when the pick would have: a hold would cancel the pick System 1
    is making, and goals stay at one per plan. Once the pick has expired, or for an answer that is
    not a gate failure, the plan is a hold. On by default."""
    import dataclasses

    answer = _scripted_answers(planner, monkeypatch)
    monkeypatch.setattr(planner, "min_confidence", 0.5)
    planner._last_pick = planner._confirmed_stamp = planner._published_pick = None
    assert PlannerConfig().gate_keeps_goal is True
    off = dataclasses.replace(planner.config, gate_keeps_goal=False)
    monkeypatch.setattr(planner, "config", off)
    assert planner.plan(image, "sort the recyclables", 3.5, 0.1, camera).target_label == "aluminium_can"
    answer[1] = 0.1
    assert planner.plan(image, "sort the recyclables", 4.0, 0.15, camera).target_label == ""  # off: hold
    monkeypatch.setattr(planner, "config", dataclasses.replace(off, gate_keeps_goal=True))
    planner._last_pick = planner._published_pick = None
    assert planner.plan(image, "sort the recyclables", 4.5, 0.2, camera).target_label == ""  # none stands
    answer[1] = 0.999
    pick = planner.plan(image, "sort the recyclables", 5.0, 0.25, camera)
    assert pick.target_label == "aluminium_can" and pick.reason == "" and pick.valid_for_s == 3.0
    answer[1] = 0.1
    n0 = planner.picks_resent
    low = planner.plan(image, "sort the recyclables", 6.0, 0.35, camera)
    assert low.target_label == "aluminium_can" and "below min_confidence" in low.reason
    assert "stands until it expires" in low.reason and low.publish and planner.picks_resent == n0 + 1
    assert low.stamp == 6.0 and low.valid_for_s == pytest.approx(2.0)  # expires at 8.0, as the pick
    np.testing.assert_array_equal(low.target_belt, pick.target_belt)
    np.testing.assert_array_equal(low.latent, pick.latent)
    assert low.bin_id == pick.bin_id and low.confidence == pick.confidence
    assert low.pixel is None and low.target_world is None  # they were points of the earlier image
    again = planner.plan(image, "sort the recyclables", 7.0, 0.45, camera)
    assert again.target_label == "aluminium_can" and again.valid_for_s == pytest.approx(1.0)
    answer[0] = "no parse"  # not a gate failure: a hold
    assert planner.plan(image, "sort the recyclables", 7.5, 0.5, camera).target_label == ""
    answer[0] = "label=aluminium_can u=273 v=60"
    late = planner.plan(image, "sort the recyclables", 8.0, 0.55, camera)  # the pick's valid_for is over
    assert late.target_label == "" and "stands" not in late.reason
    planner._last_pick = planner._published_pick = None


def test_lighting_check_stops_new_picks_of_an_adapter_the_frame_is_not_for(
    planner, camera, image, monkeypatch
):
    """lighting_check: with an adapter tagged for one lighting domain active, a frame the classifier
    puts in another known domain (p >= lighting_check_min_p) gets no new pick: a hold, or the
    standing pick re-sent (gate_keeps_goal). Frames of its own domain, 'unknown' frames, doubtful
    ones and the base model are not stopped."""
    from adapter_manager.classifier import UNKNOWN, Prediction

    answer = _scripted_answers(planner, monkeypatch)
    monkeypatch.setattr(planner, "min_confidence", 0.5)
    planner._last_pick = planner._confirmed_stamp = planner._published_pick = None
    seen = {"label": "daylight", "p": 0.99}

    class Classifier:
        class_names = ["daylight", "overcast_dim", "night_noise"]

        def predict(self, features):
            assert features == "features of the frame"
            seen["calls"] = seen.get("calls", 0) + 1
            p = np.full(3, (1 - seen["p"]) / 2)
            return Prediction(seen["label"], seen["p"], p, 0)

    monkeypatch.setattr(planner, "lighting", (Classifier(), lambda img: "features of the frame"))
    assert planner.swap_adapter("night_noise").success
    n0 = planner.lighting_holds
    stopped = planner.plan(image, "sort the recyclables", 20.0, 0.1, camera)
    assert stopped.target_label == "" and stopped.publish and planner.lighting_holds == n0 + 1
    assert "lighting is daylight" in stopped.reason and "'night_noise' is for night_noise" in stopped.reason
    seen["label"] = "night_noise"  # its own light: the pick goes out
    pick = planner.plan(image, "sort the recyclables", 21.0, 0.2, camera)
    assert pick.target_label == "aluminium_can" and pick.reason == ""
    seen["label"] = "overcast_dim"  # the light changed: the standing pick is re-sent, no new one
    answer[0] = "label=pet_bottle u=200 v=60"
    kept = planner.plan(image, "sort the recyclables", 22.0, 0.3, camera)
    assert kept.target_label == "aluminium_can" and "lighting is overcast_dim" in kept.reason
    assert "stands until it expires" in kept.reason and planner.lighting_holds == n0 + 2
    np.testing.assert_array_equal(kept.target_belt, pick.target_belt)
    seen["p"] = 0.8  # not sure enough: not stopped
    assert planner.plan(image, "sort the recyclables", 25.0, 0.6, camera).target_label == "pet_bottle"
    seen["label"], seen["p"] = UNKNOWN, 0.2  # lighting no domain covers: not stopped
    assert planner.plan(image, "sort the recyclables", 29.0, 1.0, camera).target_label == "pet_bottle"
    seen["label"], seen["p"] = "daylight", 0.99
    calls, answer[0] = seen["calls"], "label=none"  # a hold starts no pick: the classifier is not run
    hold = planner.plan(image, "sort the recyclables", 31.0, 1.2, camera)
    assert hold.target_label == "" and seen["calls"] == calls and planner.lighting_holds == n0 + 2
    answer[0] = "label=pet_bottle u=200 v=60"
    assert planner.swap_adapter("").success  # the base model is for no lighting: never stopped
    assert planner.plan(image, "sort the recyclables", 33.0, 1.4, camera).target_label == "pet_bottle"
    assert planner.lighting_holds == n0 + 2
    planner._last_pick = planner._published_pick = None


def test_lighting_check_with_a_wrong_path_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match="lighting_check.*no_such_classifier.json"):
        Planner(PlannerConfig(lighting_check="models/lighting/no_such_classifier.json"))
