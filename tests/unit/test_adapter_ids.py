"""Adapter ids are validated (pattern, length) before any filesystem access, and bad input is
echoed only as a short prefix: one rule shared by the planner and the adapter manager."""

import pytest

from s1s2.adapters import MAX_ID_LENGTH, check_adapter_id, list_adapters, valid_adapter_id


@pytest.mark.parametrize("good", ["daylight", "night_noise-2", "a" * MAX_ID_LENGTH, "v1.2"])
def test_valid_ids(good):
    assert valid_adapter_id(good) and check_adapter_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "a" * (MAX_ID_LENGTH + 1), "../x", "a/b", ".hidden", "a..b", "x\n", "sp ace", None, 5]
)
def test_invalid_ids_are_refused(bad):
    assert not valid_adapter_id(bad)
    with pytest.raises(ValueError, match="not a library name"):
        check_adapter_id(bad)


def test_huge_id_is_echoed_as_a_short_prefix_only():
    with pytest.raises(ValueError) as exc:
        check_adapter_id("z" * 5000)
    msg = str(exc.value)
    assert "5000 characters" in msg and len(msg) < 300


def test_library_lists_only_valid_adapter_folders(tmp_path):
    for name in ("daylight", "bad name", ".hidden"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text("{}")
    (tmp_path / "no_config").mkdir()
    assert list_adapters(tmp_path) == ["daylight"]
    assert list_adapters(tmp_path / "missing") == []
