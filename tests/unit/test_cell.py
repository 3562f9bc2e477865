"""The one cell description (config/cell.yaml via s1s2.cell): validated on load, every problem
named with the file and the field."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from s1s2.cell import DEFAULT_CELL, CellError, cell_from_dict, load_cell

DATA = yaml.safe_load(Path(DEFAULT_CELL.source).read_text())


def _with(**changes) -> dict:
    d = yaml.safe_load(yaml.safe_dump(DATA))
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return d


def test_default_cell_is_the_yaml_file():
    assert DEFAULT_CELL.source.endswith("config/cell.yaml")
    assert DEFAULT_CELL.class_to_bin["aluminium_can"] == "metal" and len(DEFAULT_CELL.bins) == 5
    assert DEFAULT_CELL.arm.joint_names == ["shoulder_pan", "shoulder_lift", "elbow", "wrist_pitch"]
    np.testing.assert_allclose(DEFAULT_CELL.place_point("paper"), [0.0, -0.95, DEFAULT_CELL.place_height])
    k = DEFAULT_CELL.camera.intrinsics(320, 240)
    assert k[0, 2] == 159.5 and k[1, 2] == 119.5


@pytest.mark.parametrize(
    "changes, pattern",
    [
        ({"items__0__bin_id": "compost"}, r"pet_bottle.*unknown bin 'compost'"),
        ({"arm__joints__1__lower": 3.0}, r"shoulder_lift.*lower 3.0 must be below upper"),
        ({"arm__joints__0__max_velocity": -1}, r"shoulder_pan.*max_velocity.*> 0"),
        ({"belt__width": float("nan")}, r"belt.width.*finite"),
        ({"camera__fovy_deg": 200}, r"camera.fovy_deg.*200"),
        ({"items__2__shape": "torus"}, r"aluminium_can.*shape 'torus'"),
        ({"bins__1__bin_id": "plastic"}, r"bin ids must be unique"),
        ({"camera__zoom": 2}, r"camera.*unknown key.*zoom"),
    ],
)
def test_bad_cells_are_refused_naming_the_field(changes, pattern):
    with pytest.raises(CellError, match=pattern):
        cell_from_dict(_with(**changes), "test.yaml")


def test_missing_section_and_bad_files(tmp_path):
    d = _with()
    del d["camera"]
    with pytest.raises(CellError, match=r"missing section.*camera"):
        cell_from_dict(d)
    with pytest.raises(CellError, match="not found"):
        load_cell(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("arm: [unclosed")
    with pytest.raises(CellError, match="not valid YAML"):
        load_cell(bad)
    bad.write_text("- a list\n")
    with pytest.raises(CellError, match="mapping"):
        load_cell(bad)
