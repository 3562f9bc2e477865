"""config/vlm_planner.yaml's max_new_tokens must fit the longest answer the parser accepts."""

from pathlib import Path

import yaml
from transformers import AutoTokenizer

from s1s2.cell import DEFAULT_CELL

ROOT = Path(__file__).resolve().parents[2]


def test_max_new_tokens_fits_longest_answer_plus_eos():
    params = yaml.safe_load((ROOT / "config" / "vlm_planner.yaml").read_text())["vlm_planner"][
        "ros__parameters"
    ]
    tok = AutoTokenizer.from_pretrained(ROOT / params["model_id"])
    w, h = DEFAULT_CELL.camera.width, DEFAULT_CELL.camera.height
    longest = max(
        len(tok(f"label={c} u={u} v={v}", add_special_tokens=False)["input_ids"])
        for c in DEFAULT_CELL.class_names
        for u, v in ((w - 1, h - 1), (w // 3, h // 3), (7, 7))
    )
    assert params["max_new_tokens"] >= longest + 1, (params["max_new_tokens"], longest)
