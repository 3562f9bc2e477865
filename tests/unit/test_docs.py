"""Docs that promise names must list them all."""

from pathlib import Path

from s1s2 import topics

ROOT = Path(__file__).resolve().parents[2]


def test_every_topic_and_service_is_documented():
    doc = (ROOT / "docs" / "interfaces.md").read_text()
    for t in topics.ALL_TOPICS:
        assert f"`{t.name}`" in doc, t.name
        assert t.type in doc, t.type
    for srv in (topics.SWAP_ADAPTER_SERVICE, topics.RESET_SIM_SERVICE, topics.SET_LIGHTING_SERVICE):
        assert f"`{srv}`" in doc, srv


def test_every_interface_file_is_built():
    cmake = (ROOT / "src" / "s1s2_interfaces" / "CMakeLists.txt").read_text()
    for f in sorted((ROOT / "src" / "s1s2_interfaces").glob("*/*.*")):
        if f.suffix in (".msg", ".srv"):
            assert f'"{f.parent.name}/{f.name}"' in cmake, f
