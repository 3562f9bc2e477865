"""The shipped adapters' recipe per domain (s1s2_training/vlm/build_adapters.py): the shared recipe,
with each domain's measured departures on top."""

from s1s2_training.vlm import build_adapters as ba
from s1s2_training.vlm.data import DOMAIN_TRAIN_MODES
from s1s2_training.vlm.finetune import FinetuneConfig


def test_each_domain_gets_the_shared_recipe_with_its_overrides_on_top():
    shared = dict(ba.SHIPPED, seed=0)
    fields, episodes, modes = ba.recipe_of("overcast_dim", shared, ba.TRAIN_EPISODES)
    assert fields == shared and episodes == ba.TRAIN_EPISODES and modes == ("default", "dense")
    fields, episodes, modes = ba.recipe_of("low_sun_glare", shared, ba.TRAIN_EPISODES)
    assert episodes == 128 and fields["colour_constancy"] is False and fields["steps"] == 4800
    assert fields == shared | {"colour_constancy": False, "steps": 4800} and modes == DOMAIN_TRAIN_MODES
    FinetuneConfig(**fields)  # every override is a FinetuneConfig field, train_episodes or modes
    # recipe_of left the table alone
    assert ba.OVERRIDES["low_sun_glare"] == {"colour_constancy": False, "steps": 4800, "train_episodes": 128}
    assert ba.TRAIN_EPISODES == 64 and ba.max_train_episodes() == 128  # the seed-set test counts the largest


def test_a_per_domain_episode_count_is_taken_out_of_the_fields(monkeypatch):
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 80, "steps": 100})
    fields, episodes, _ = ba.recipe_of("overcast_dim", dict(ba.SHIPPED), ba.TRAIN_EPISODES)
    assert episodes == 80 and fields["steps"] == 100 and "train_episodes" not in fields
    assert ba.max_train_episodes() == 128  # the seed-set test must count the largest (low sun's)
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 200})
    assert ba.max_train_episodes() == 200
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"modes": ("default", "dense", "lazy")})
    fields, episodes, modes = ba.recipe_of("overcast_dim", dict(ba.SHIPPED), ba.TRAIN_EPISODES)
    assert modes == ("default", "dense", "lazy") and "modes" not in fields and episodes == ba.TRAIN_EPISODES
    FinetuneConfig(**fields)
    assert ba.overrides_note().endswith("overcast_dim: --modes default,dense,lazy")
    monkeypatch.setitem(ba.OVERRIDES, "overcast_dim", {"train_episodes": 80, "steps": 100})
    assert (
        ba.overrides_note() == "low_sun_glare: --no-colour-constancy --steps 4800 --train-episodes 128; "
        "overcast_dim: --train-episodes 80 --steps 100"
    )


def test_the_manifest_note_names_each_override_as_finetune_flags():
    assert ba.overrides_note() == "low_sun_glare: --no-colour-constancy --steps 4800 --train-episodes 128"


def test_every_override_names_a_domain_that_gets_an_adapter():
    assert set(ba.OVERRIDES) <= set(ba.domains())


def test_build_trains_the_longest_recipe_first_and_records_every_domain_in_order(monkeypatch, tmp_path):
    """s1s2 models adapters over two workers: the jobs start longest first (low sun's 4800 x 128),
    the record keeps the domains' order, each with its own steps and episodes."""
    seen = {}

    def fake_run_jobs(fn, jobs, workers):
        seen.update(fn=fn, jobs=jobs, workers=workers)
        metrics = {
            k: {"class_acc": 0.5}
            for k in ("base_domain", "adapter_domain", "base_daylight", "adapter_daylight")
        }
        metrics |= {"trainable_parameters": 1, "adapter_bytes": 2, "train_s": 3.0}
        return [(j[0], metrics, 4.0) for j in jobs]

    monkeypatch.setattr(ba, "run_jobs", fake_run_jobs)
    rec = ba.build(tmp_path / "lib", 0, base_dir=tmp_path / "base", workers=2)
    assert seen["fn"] is ba.train_one and seen["workers"] == 2 and rec["metrics"]["workers"] == 2
    assert [j[0] for j in seen["jobs"]][0] == "low_sun_glare"
    assert list(rec["metrics"]["domains"]) == ba.domains()
    low, over = rec["metrics"]["domains"]["low_sun_glare"], rec["metrics"]["domains"]["overcast_dim"]
    assert (low["steps"], low["train_episodes"], low["modes"]) == (4800, 128, ["default", "dense"])
    assert (over["steps"], over["train_episodes"], over["modes"]) == (2400, 64, ["default", "dense"])
    assert all(j[4] == tmp_path / "base" and j[5] == tmp_path / "lib" for j in seen["jobs"])


def test_run_jobs_returns_results_in_job_order_in_process_and_over_workers():
    jobs = [-3, 1, -2, 5]
    assert ba.run_jobs(abs, jobs, 1) == ba.run_jobs(abs, jobs, 2) == [3, 1, 2, 5]
    assert ba.default_workers() in (1, 2)
