"""models/ holds every artifact the demo needs, each with a manifest record saying how it was made."""

import json
from pathlib import Path

from s1s2.models import BUILDERS, SIZE_BUDGET_MB, dir_size_mb

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_names_command_data_seed_for_every_artifact():
    manifest = json.loads((ROOT / "models" / "manifest.json").read_text())
    for name in BUILDERS:
        rec = manifest["artifacts"][name]
        for key in ("command", "data", "seed", "trained", "path"):
            assert key in rec, (name, key)
        assert isinstance(rec["trained"], bool)
        assert not Path(rec["path"]).is_absolute(), rec["path"]
        assert (ROOT / rec["path"]).is_dir(), rec["path"]
        assert any((ROOT / rec["path"]).iterdir()), rec["path"]


def test_models_fit_the_size_budget():
    assert dir_size_mb(ROOT / "models") < SIZE_BUDGET_MB
