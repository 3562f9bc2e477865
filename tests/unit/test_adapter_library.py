"""The verified adapter library (s1s2.adapters): manifests, hashes, base fingerprints, atomic
add/remove (a kill -9 during add leaves the library intact), safetensors only, lookup by tag."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from s1s2 import repo_root
from s1s2.adapters import (
    AdapterIndex,
    AdapterLibraryError,
    add_adapter,
    base_fingerprint,
    list_adapters,
    read_manifest,
    remove_adapter,
    verify_adapter,
    write_manifest,
)

ADAPTERS = repo_root() / "models" / "adapters"
BASE = repo_root() / "models" / "sim_vlm"


@pytest.fixture(scope="module")
def base_fp():
    return base_fingerprint(BASE)


@pytest.fixture
def lib(tmp_path):
    root = tmp_path / "lib"
    for name in ("daylight", "night_noise"):
        shutil.copytree(ADAPTERS / name, root / name)
    return root


def _fields(m, **over):
    d = {k: v for k, v in m.__dict__.items() if k not in ("files", "format", "adapter_id")}
    return d | over


def test_shipped_library_verifies_against_its_base(base_fp):
    for aid in list_adapters(ADAPTERS):
        m = verify_adapter(ADAPTERS / aid, base_fp)
        assert (
            m.adapter_id == aid
            and m.files["adapter_model.safetensors"]
            and f"lighting:{aid}" in m.context_tags
        )


def test_fingerprint_is_of_the_weights(tmp_path, base_fp):
    copy = tmp_path / "base"
    shutil.copytree(BASE, copy)
    assert base_fingerprint(copy) == base_fp  # where it lives does not matter
    raw = bytearray((copy / "model.safetensors").read_bytes())
    raw[-1] ^= 1  # one bit of one weight
    (copy / "model.safetensors").write_bytes(bytes(raw))
    assert base_fingerprint(copy) != base_fp


def test_corrupt_weights_fail_their_hash(lib, base_fp):
    w = lib / "daylight" / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(AdapterLibraryError, match="daylight.*fails its hash"):
        verify_adapter(lib / "daylight", base_fp)


def test_adapter_for_another_base_is_refused(lib, base_fp):
    m = read_manifest(lib / "daylight")
    write_manifest(
        lib / "daylight", adapter_id="daylight", **_fields(m, base_fingerprint="sha256:" + "0" * 64)
    )
    with pytest.raises(AdapterLibraryError, match="daylight.*another base model"):
        verify_adapter(lib / "daylight", base_fp)
    assert verify_adapter(lib / "daylight").adapter_id == "daylight"  # without a base to compare: hashes only


def test_pickle_weights_are_refused(lib, base_fp):
    (lib / "daylight" / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(AdapterLibraryError, match="pickle.*adapter_model.bin.*safetensors only"):
        verify_adapter(lib / "daylight", base_fp)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda d: d.pop("base_fingerprint"), "lacks base_fingerprint"),
        (lambda d: d.update(rank="8"), r"wrong types: rank \(str\)"),
        (lambda d: d.update(strategy="everything"), "unknown strategy"),
        (lambda d: d.update(rank=4), "r = 8, manifest says 4"),
        (lambda d: d.update(adapter_id="other"), "manifest says adapter_id 'other'"),
        (lambda d: d.update(input_normalisation="yes"), "input_normalisation 'yes' must be true or false"),
    ],
)
def test_bad_manifests_are_refused_naming_the_field(lib, base_fp, edit, pattern):
    path = lib / "daylight" / "s1s2_adapter.json"
    d = json.loads(path.read_text())
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(AdapterLibraryError, match=pattern):
        verify_adapter(lib / "daylight", base_fp)


def test_add_replace_and_remove_are_atomic(lib, base_fp, tmp_path):
    src = tmp_path / "new_adapter"
    shutil.copytree(ADAPTERS / "warm_tungsten", src)
    m0 = read_manifest(src)
    m = add_adapter(
        lib,
        src,
        "warm_v2",
        expected_base=base_fp,
        **_fields(m0, context_tags=["lighting:warm_tungsten", "v2"]),
    )
    assert m.adapter_id == "warm_v2" and "warm_v2" in list_adapters(lib)
    assert verify_adapter(lib / "warm_v2", base_fp).context_tags == ["lighting:warm_tungsten", "v2"]
    with pytest.raises(AdapterLibraryError, match="already"):
        add_adapter(lib, src, "warm_v2", expected_base=base_fp)
    bad = tmp_path / "bad"
    shutil.copytree(src, bad)
    (bad / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(AdapterLibraryError, match="fails its hash"):
        add_adapter(lib, bad, "warm_v2", expected_base=base_fp, replace=True)
    assert verify_adapter(lib / "warm_v2", base_fp)  # a failed replace leaves the old one
    assert not [p for p in lib.iterdir() if p.name.startswith(".")]  # and no temporary folder
    remove_adapter(lib, "warm_v2")
    assert list_adapters(lib) == ["daylight", "night_noise"]
    with pytest.raises(AdapterLibraryError, match="no adapter 'warm_v2'"):
        remove_adapter(lib, "warm_v2")


SLOW_ADD = """
import shutil, sys, time
import s1s2.adapters as a
real = shutil.copytree
def slow_copy(src, dst, *k, **kw):
    shutil.copy2(src, dst)
    print("COPYING", flush=True)
    time.sleep(30)  # killed here: one file copied into the temporary folder
a.shutil.copytree = lambda src, dst, **kw: real(src, dst, copy_function=slow_copy, **kw)
a.add_adapter(sys.argv[1], sys.argv[2], "half_done")
"""


def test_kill_9_during_add_leaves_the_library_intact(lib, base_fp, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ADAPTERS / "overcast_dim", src)
    proc = subprocess.Popen([sys.executable, "-c", SLOW_ADD, str(lib), str(src)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))  # fmt: skip
    assert proc.stdout.readline().strip() == "COPYING"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert list_adapters(lib) == ["daylight", "night_noise"]  # nothing half-registered is visible
    for aid in list_adapters(lib):
        verify_adapter(lib / aid, base_fp)
    assert [p.name for p in lib.iterdir() if p.name.startswith(".tmp-")]  # the debris is hidden ...
    add_adapter(lib, src, "overcast_dim", expected_base=base_fp)  # ... and cleaned by the next add
    assert not [p for p in lib.iterdir() if p.name.startswith(".")]
    assert list_adapters(lib) == ["daylight", "night_noise", "overcast_dim"]


def test_index_looks_up_tags_from_manifests_only(lib, monkeypatch):
    import s1s2.adapters as a

    def no_hashing(*args, **kw):
        raise AssertionError("lookup must not read weights")

    monkeypatch.setattr(a, "sha256_file", no_hashing)
    idx = AdapterIndex(lib)
    assert idx.lookup("lighting:night_noise") == ["night_noise"]
    assert idx.lookup("lighting:night_noise", "lighting:daylight") == []
    assert idx.ids() == ["daylight", "night_noise"] and not idx.errors


def test_planner_refuses_an_adapter_for_another_base_and_keeps_the_active_one(lib, tmp_path):
    from vlm_planner.config import PlannerConfig
    from vlm_planner.planner import Planner

    m = read_manifest(lib / "night_noise")
    write_manifest(
        lib / "night_noise", adapter_id="night_noise", **_fields(m, base_fingerprint="sha256:" + "1" * 64)
    )
    planner = Planner(PlannerConfig(adapter_library=str(lib)))
    assert planner.swap_adapter("daylight").success
    res = planner.swap_adapter("night_noise")
    assert not res.success and "another base model" in res.message
    assert planner.active_adapter == "daylight" == res.active_adapter


def test_library_bench_builds_and_measures_a_library(tmp_path):
    from adapter_manager.library_bench import make_library, run

    lib = tmp_path / "big"
    lib.mkdir()
    make_library(lib, 12, ADAPTERS / "daylight", ["daylight", "night_noise"])
    idx = AdapterIndex(lib)
    assert len(idx.ids()) == 12 and len(idx.lookup("lighting:night_noise")) == 6
    assert idx.lookup("lighting:daylight", "site:00") == sorted(idx.lookup("lighting:daylight", "site:00"))
    r = run(n=12, swaps=4, max_resident=2)
    assert r["adapters"] == 12 and r["resident_after_swaps"] == 2
    # 4 swaps with 2 slots filled at start-up (warm_adapter_slots): none builds a slot through
    # peft; each is a copy in place, or a resident swap when it picked a warm one
    assert r["warm_slots"] == 2 and r["first_loads_ms"]["n"] == 0
    assert r["swap_from_disk_ms"]["n"] + r["picks_already_resident"] == 4 and r["swap_from_disk_ms"]["n"] >= 1
    assert r["swap_resident_ms"]["p50"] > 0
    assert r["swap_with_base_ms"]["n"] == 8 and r["swap_with_base_ms"]["p50"] > 0
    r16 = run(n=6, swaps=3, max_resident=2, rank=16)
    assert r16["source"]["rank"] == 16 and r16["source"]["trained"] is False
    assert (
        r16["source"]["weights_bytes"] > r["source"]["weights_bytes"]
        and r16["swap_from_disk_ms"]["n"] + r16["picks_already_resident"] == 3
        and r16["first_loads_ms"]["n"] == 0
    )
