"""`make results`: runs are (recipe, seed); tables, seed summaries and plots pair each run with the run of
its recipe's ``baseline`` at the same seed; the committed ledger is keyed by (recipe, seed) and kept only
while a recipe parses to the configuration a row was measured with (pure functions and tmp folders, no
training)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipeline.results import plot, seed_table, table

REPO = Path(__file__).resolve().parent.parent


def _row(recipe, seed, value, prune="output_gate", metric="accuracy", units=256, epochs=30, baseline=None, **kw):
    """A synthetic results row: a pruned row names its ``baseline`` recipe explicitly (dense rows: none)."""
    return {"recipe": recipe, "seed": seed, "baseline": baseline, "config": {},
            "task": "mnist_rows" if metric == "accuracy" else "ptb_chars", "units": units,
            "prune": prune, "gate_l1": 1.0, "target": None if prune == "none" else 0.9, "sparsity": 0.0
            if prune == "none" else 0.9, "metric": metric, "float": value, "fixed": value, "speedup": 9.0,
            "ideal": 9.5, "energy": 8.9, "epochs": epochs, "wall_s": 1.0, "l1_begin_epoch": 0,
            "teacher": None, **kw}


def _lines(text: str) -> dict[tuple[str, str], str]:
    """The data rows of `table()`, keyed by (recipe, seed) as printed (recipe names repeat over seeds)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("| ").split(" | ")]
            out[(cells[0].strip("`"), cells[3])] = line
    return out


# ------------------------------------------------------------------------------ tables on synthetic rows
def test_seed_table_pairs_each_seed_with_the_baseline_run_of_the_same_seed():
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense", 1, 0.97, prune="none"),
            _row("og", 0, 0.94, baseline="dense"), _row("og", 1, 0.97, baseline="dense"),
            _row("late", 0, 0.95, baseline="dense", l1_begin_epoch=5, teacher="dense")]
    text = seed_table(rows)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert set(lines) == {"`dense`", "`og`"}  # "late" has one seed: no summary row
    # og: deltas 0.94 - 0.95 = -1.0 and 0.97 - 0.97 = 0.0 points -> mean -0.5, sd 0.7071; mean 0.955, sd 0.0212
    assert "| 0, 1 |" in lines["`og`"]
    assert "-0.5 +- 0.7 pts (-1.0, +0.0)" in lines["`og`"]
    assert "accuracy 0.9550 +- 0.0212" in lines["`og`"]
    assert "| baseline |" in lines["`dense`"]
    # the main table: seed 1 compares with seed 1's dense run; words for late L1 and distillation
    main = _lines(table(rows))
    assert "| -1.0 pts |" in main[("og", "0")] and "| +0.0 pts |" in main[("og", "1")]
    assert "| baseline |" in main[("dense", "0")] and "| baseline |" in main[("dense", "1")]
    assert "output gate, L1 1 from epoch 6, distilled" in main[("late", "0")]
    assert "| state, L1 0.5 on o_t |" in table([_row("s", 0, 0.9, prune="state", gate_l1=0.5)])
    folded = table([_row("dense", 0, 0.95, prune="none"),
                    _row("og_fold", 0, 0.94, baseline="dense", fold_embedding=True)])
    assert "| output gate, L1 1; accelerator: folded embedding |" in folded  # same training, same dense run
    assert "| -1.0 pts |" in _lines(folded)[("og_fold", "0")]
    # a fine-tuned run compares with the recipe its file names (the dense run fine-tuned from the same
    # model), not with the fresh dense run of the same width and seed
    tuned = rows + [_row("og_ft", 0, 0.96, baseline="dense_ft", init_from="dense"),
                    _row("dense_ft", 0, 0.99, prune="none", init_from="dense")]
    line = _lines(table(tuned))[("og_ft", "0")]
    assert "| -3.0 pts |" in line and "fine-tuned from `dense`" in line


def test_a_run_without_a_measured_baseline_of_its_seed_is_not_compared():
    """No ``baseline`` in the recipe, a baseline recipe with no run at that seed, or one with no run at all:
    "n/a" in the table, and the seed summary pairs only the seeds that have their baseline's run."""
    rows = [_row("dense", 0, 0.95, prune="none"), _row("og", 0, 0.94, baseline="dense"),
            _row("og", 1, 0.93, baseline="dense"), _row("free", 0, 0.9), _row("ghost", 0, 0.9, baseline="nope")]
    lines = _lines(table(rows))
    assert "| -1.0 pts |" in lines[("og", "0")]
    assert "| n/a |" in lines[("og", "1")]  # dense has no seed-1 run
    assert "| n/a |" in lines[("free", "0")] and "| n/a |" in lines[("ghost", "0")]
    line = [x for x in seed_table(rows).splitlines() if x.startswith("| `og` |")][0]
    assert line.endswith("| -1.0 pts (-1.0) |")  # one pair: no sd


def test_cosine_lr_run_compares_with_its_baseline_not_the_dense_run_of_the_same_size():
    """A cosine-LR pruned run names the cosine-LR dense run as its baseline and pairs with it, though a
    constant-LR dense run of the same size, epochs and seed exists; ledger rows without the key are
    constant-LR rows."""
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_cos", 0, 0.97, prune="none", lr_schedule="cosine"),
            _row("og", 0, 0.94, baseline="dense", lr_schedule="constant"),
            _row("og_cos", 0, 0.96, baseline="dense_cos", lr_schedule="cosine")]
    lines = _lines(table(rows))
    assert "| -1.0 pts |" in lines[("og_cos", "0")] and "output gate, L1 1, cosine LR |" in lines[("og_cos", "0")]
    assert "| -1.0 pts |" in lines[("og", "0")] and "cosine" not in lines[("og", "0")]
    assert "| baseline |" in lines[("dense_cos", "0")] and "| baseline |" in lines[("dense", "0")]
    # the pairing follows the name: pointing og_cos at the constant-LR run changes its gap
    swapped = rows[:3] + [{**rows[3], "baseline": "dense"}]
    assert "| +1.0 pts |" in _lines(table(swapped))[("og_cos", "0")]


def test_step_lr_and_unpruned_last_state_rows():
    """A step-LR run pairs with its baseline (the dense run of the same drop; epoch and factor in words);
    a ``prune_last = false`` run is labelled "h_T unpruned" (ledger rows without the key: pruned) and
    pairs with the dense run its recipe names."""
    from pipeline.results import _lr_text

    step = _lr_text({"lr_schedule": "step", "lr_drop_epoch": 20, "lr_drop_factor": 0.1})
    assert step == "step x0.1 from epoch 21"
    assert _lr_text({"lr_schedule": "cosine", "lr_drop_epoch": 0, "lr_drop_factor": 0.1}) == "cosine"
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_step", 0, 0.97, prune="none", lr_schedule=step),
            _row("dense_step5", 0, 0.90, prune="none", lr_schedule="step x0.1 from epoch 6"),
            _row("og_last", 0, 0.945, baseline="dense", prune_last=False),
            _row("og_last_step", 0, 0.965, baseline="dense_step", prune_last=False, lr_schedule=step)]
    lines = _lines(table(rows))
    assert "| output gate, L1 1, h_T unpruned |" in lines[("og_last", "0")]
    assert "| -0.5 pts |" in lines[("og_last", "0")]
    assert "| output gate, L1 1, step x0.1 from epoch 21 LR, h_T unpruned |" in lines[("og_last_step", "0")]
    assert "| -0.5 pts |" in lines[("og_last_step", "0")]  # against dense_step, not dense_step5 or dense
    assert "h_T" not in lines[("dense_step", "0")]
    assert "h_T" not in table([_row("og", 0, 0.9, baseline="dense")])


def test_shift_augmented_run_pairs_with_its_baseline_of_the_same_shifts():
    """A run trained on shifted images (``augment_shift``) compares with the dense run its recipe names
    (trained on the same shifts), says so in words, and ledger rows without the key are unaugmented."""
    step = "step x0.1 from epoch 21"
    rows = [_row("dense", 0, 0.95, prune="none", lr_schedule=step),
            _row("og", 0, 0.94, baseline="dense", lr_schedule=step),
            _row("dense_aug", 0, 0.97, prune="none", lr_schedule=step, augment_shift=2),
            _row("og_aug", 0, 0.968, baseline="dense_aug", lr_schedule=step, prune_last=False, augment_shift=2),
            _row("og_aug1", 0, 0.90, lr_schedule=step, augment_shift=1)]  # no dense run with 1-pixel shifts
    lines = _lines(table(rows))
    assert "| -0.2 pts |" in lines[("og_aug", "0")]  # against dense_aug, not dense
    assert ("| output gate, L1 1, step x0.1 from epoch 21 LR, h_T unpruned, train images shifted <= 2 px |"
            in lines[("og_aug", "0")])
    assert "| none, step x0.1 from epoch 21 LR, train images shifted <= 2 px |" in lines[("dense_aug", "0")]
    assert "| -1.0 pts |" in lines[("og", "0")]
    assert "shifted" not in lines[("og", "0")] and "shifted" not in lines[("dense", "0")]
    assert "| n/a |" in lines[("og_aug1", "0")]


def test_seed_table_flags_pairs_trained_on_two_cpu_models():
    """Training is bit-reproducible on one CPU model only: a recipe whose run and same-seed baseline run
    were trained on different recorded CPUs says so; unrecorded (older) rows are not guessed at."""
    same = [_row("dense", 0, 0.95, prune="none", machine="A"), _row("dense", 1, 0.97, prune="none", machine="A"),
            _row("og", 0, 0.94, baseline="dense", machine="A"), _row("og", 1, 0.97, baseline="dense", machine="A")]
    line = [x for x in seed_table(same).splitlines() if x.startswith("| `og` |")][0]
    assert "CPU" not in line and line.endswith("(-1.0, +0.0) |")
    mixed = same[:3] + [_row("og", 1, 0.97, baseline="dense", machine="B")]
    line = [x for x in seed_table(mixed).splitlines() if x.startswith("| `og` |")][0]
    assert line.endswith("(-1.0, +0.0); pairs across CPU models: A, B |")
    unknown = same[:3] + [_row("og", 1, 0.97, baseline="dense")]  # no "machine": trained before it was recorded
    assert "CPU" not in seed_table(unknown)


def test_seed_table_bpc_is_relative():
    rows = [_row("d", 0, 2.0, prune="none", metric="bpc"), _row("d", 1, 1.0, prune="none", metric="bpc"),
            _row("p", 0, 2.2, baseline="d", metric="bpc"), _row("p", 1, 1.05, baseline="d", metric="bpc")]
    line = [x for x in seed_table(rows).splitlines() if x.startswith("| `p`")][0]
    # 100 * (2.2 / 2.0 - 1) = +10.0, 100 * (1.05 / 1.0 - 1) = +5.0 -> mean 7.5, sd 3.5
    assert "+7.5 +- 3.5% BPC (+10.0, +5.0)" in line


def test_table_cells_on_synthetic_rows():
    """Every cell of `table()` for hand-made rows, computed by hand: the gap to the baseline run of the
    same seed in points (accuracy) or percent (BPC), n/a without one, and the restated-speedup footnote."""
    rows = [_row("dense", 0, 0.95, prune="none", sparsity=0.0),
            _row("og", 0, 0.93, baseline="dense", fixed=0.925, sparsity=0.9123, speedup=7.254, ideal=8.0,
                 energy=6.5, wall_s=123.4, speedup_basis="mean columns"),
            _row("lonely", 0, 0.9, units=64),
            _row("orphan", 3, 0.9, baseline="dense"),
            _row("pd", 1, 2.0, prune="none", metric="bpc", units=128),
            _row("p", 1, 2.1, baseline="pd", metric="bpc", units=128, gate_l1=0.0, prune="state", sparsity=0.5)]
    lines = table(rows).splitlines()
    assert lines[0].startswith("| recipe | units | epochs | seed | pruning | target | state sparsity |")
    assert "| vs baseline (same seed) |" in lines[0]
    cells = {line.split(" | ")[0][3:-1]: [c.strip() for c in line.strip("| ").split(" | ")] for line in lines[2:8]}
    assert cells["dense"] == ["`dense`", "256", "30", "0", "none", "-", "0.0%", "accuracy 0.9500", "0.9500",
                              "baseline", "9.00x (9.50x)", "8.90x", "1 s"]
    # 100 * (0.93 - 0.95) = -2.0 points; 7.254 -> 7.25x, restated (*); 123.4 s -> 123 s
    assert cells["og"] == ["`og`", "256", "30", "0", "output gate, L1 1", "0.90", "91.2%", "accuracy 0.9300", "0.9250",
                           "-2.0 pts", "7.25x* (8.00x)", "6.50x", "123 s"]
    assert cells["lonely"][9] == "n/a"  # no baseline named
    assert cells["orphan"][3] == "3" and cells["orphan"][9] == "n/a"  # its baseline has no seed-3 run
    # 100 * (2.1 / 2.0 - 1) = +5.0 % BPC against its baseline run of the same seed
    assert cells["p"] == ["`p`", "128", "30", "1", "state", "0.90", "50.0%", "bpc 2.1000", "2.1000", "+5.0% BPC",
                          "9.00x (9.50x)", "8.90x", "1 s"]
    assert lines[8] == "" and lines[9].startswith("Speedups are modelled cycles") and len(lines) == 10
    assert "Speedups" not in table(rows[:1] + rows[2:])  # no restated row: no footnote


def test_plot_groups_runs_by_pruning_width_and_variant(tmp_path):
    rows = [_row("dense", 0, 0.95, prune="none"), _row("og", 0, 0.94, baseline="dense"),
            _row("og", 1, 0.93, baseline="dense"), _row("kd", 0, 0.955, baseline="dense", teacher="dense"),
            _row("ft", 0, 0.92, baseline="dense", init_from="dense"),
            _row("s", 0, 0.9, prune="state", gate_l1=0.0, units=128)]
    labels = plot(rows, "mnist_rows", tmp_path / "p.png")
    assert sorted(labels) == sorted(["output gate, H=256", "output gate, H=256, distilled",
                                     "output gate, H=256, fine-tuned from dense", "state, H=128"])
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert plot(rows, "ptb_chars", tmp_path / "q.png") == [] and not (tmp_path / "q.png").exists()


def test_gap_plot_shows_each_pruned_recipe_against_the_target(tmp_path):
    """One line per pruned recipe with >= 2 paired seeds (dense recipes and single runs left out),
    sorted by mean gap; the task without such recipes gets no file."""
    from pipeline.results import _seed_families, gap_plot

    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense", 1, 0.97, prune="none"),
            _row("og", 0, 0.94, baseline="dense"), _row("og", 1, 0.97, baseline="dense"),
            _row("late", 0, 0.90, baseline="dense"), _row("late", 1, 0.93, baseline="dense"),
            _row("single", 0, 0.99, baseline="dense")]
    fams = _seed_families(rows)
    assert set(fams) == {"dense", "og", "late"}
    assert fams["late"][1] == pytest.approx([-5.0, -4.0]) and fams["og"][1] == pytest.approx([-1.0, 0.0])
    assert [r["seed"] for r in fams["og"][0]] == [0, 1] and fams["dense"][1] == []
    assert gap_plot(rows, "mnist_rows", tmp_path / "g.png") == ["late", "og"]
    assert (tmp_path / "g.png").stat().st_size > 10_000
    assert gap_plot(rows, "ptb_chars", tmp_path / "h.png") == [] and not (tmp_path / "h.png").exists()


# ------------------------------------------------------------------------------ machine info
def test_cpu_model_reads_cpuinfo_and_falls_back(tmp_path, monkeypatch):
    import os
    import platform

    from pipeline import util
    from pipeline.util import cpu_model, machine_info

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t:  Some   CPU 9000\n"
                    "stepping\t: 1\n\nprocessor\t: 1\nmodel\t\t: 99\nmodel name\t: Other\n")
    assert cpu_model(info) == "Some CPU 9000 (X family 25 model 17 stepping 1)"  # the first processor's block
    info.write_text("model name\t: Some CPU 9000\n")
    assert cpu_model(info) == "Some CPU 9000"
    # no model name (empty or no file): platform.processor(), else platform.machine(), else "unknown"
    monkeypatch.setattr(platform, "processor", lambda: "proc-x")
    monkeypatch.setattr(platform, "machine", lambda: "arch-y")
    info.write_text("processor\t: 0\nmodel name\t:\n")
    assert cpu_model(info) == "proc-x" and cpu_model(tmp_path / "missing") == "proc-x"
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert cpu_model(info) == "arch-y"
    monkeypatch.setattr(platform, "machine", lambda: "")
    assert cpu_model(tmp_path / "missing") == "unknown"
    monkeypatch.setattr(util, "cpu_model", lambda: "CPU Z")
    monkeypatch.setattr(platform, "python_version", lambda: "3.x.y")
    assert machine_info(tensorflow="2.x") == {"cpu": "CPU Z", "cores": os.cpu_count(), "python": "3.x.y",
                                              "tensorflow": "2.x"}


# ------------------------------------------------------------------------------ bundled recipes
def test_every_bundled_recipe_loads_and_names_known_recipes():
    """Each models/*.toml loads at every seed it lists; one file per configuration (no ``_seed<N>``
    copies, no two files that parse to the same one); a ``baseline`` names a bundled dense recipe of the
    same task and width that has a run at every seed of this one; a teacher or init_from recipe of the
    same task also has every seed (a run reads the model of its own seed)."""
    from pipeline.recipes import MODELS_DIR, load_recipe

    names = {p.stem for p in MODELS_DIR.glob("*.toml")}
    assert len(names) > 20
    configs: dict[str, list[str]] = {}
    unpaired = set()
    for name in sorted(names):
        assert not re.search(r"_seed\d+$", name), f"{name}: a seed copy (list the seed in seeds = [...] instead)"
        recipe = load_recipe(name)
        assert recipe.seed == recipe.seeds[0], name
        for seed in recipe.seeds:
            run = load_recipe(name, seed=seed)
            assert (run.name, run.seed, run.config()) == (name, seed, recipe.config()), name
        configs.setdefault(json.dumps(recipe.config(), sort_keys=True), []).append(name)
        dense = recipe.sparsity.schedule == "fixed" and not recipe.sparsity.threshold
        if recipe.baseline:
            assert recipe.baseline in names, f"{name}: baseline = {recipe.baseline!r} is not a bundled recipe"
            base = load_recipe(recipe.baseline)
            assert base.sparsity.schedule == "fixed" and base.sparsity.threshold == 0, \
                f"{name}: baseline {base.name} is not a dense recipe"
            missing = sorted(set(recipe.seeds) - set(base.seeds))
            assert not missing, f"{name}: baseline {base.name} has no run of seeds {missing}"
            assert base.data.name == recipe.data.name, name
            assert base.model.units == recipe.model.units, name
        elif not dense:
            unpaired.add(name)
        for key in ("teacher", "init_from"):
            ref = getattr(recipe.train, key)
            if ref and not ref.endswith(".keras"):
                assert ref in names, f"{name}: train.{key} = {ref!r} is not a bundled recipe"
                other = load_recipe(ref)
                assert other.data.name == recipe.data.name, name
                missing = sorted(set(recipe.seeds) - set(other.seeds))
                assert not missing, f"{name}: train.{key} = {ref!r} has no run of seeds {missing}"
    assert unpaired == {"mnist_rows_demo"}  # every pruned recipe but make demo's names its dense run
    # no two recipes alike, but make demo's: it is mnist_rows_og90w_q8 at seed 0 (as its comment says)
    assert [v for v in configs.values() if len(v) > 1] == [["mnist_rows_demo", "mnist_rows_og90w_q8"]]
    assert len(configs) == len(names) - 1


# ------------------------------------------------------------------------------ the ledger
_DENSE = """# a tiny dense recipe
seeds = [0, 1]

[data]
name = "mnist_rows"

[model]
units = [8]

[train]
epochs = 30
"""

_PRUNED = """# a tiny pruned recipe
seeds = [0, 1]
baseline = "dense"

[data]
name = "mnist_rows"

[model]
units = [8]
prune = "output_gate"
gate_l1 = 1.0

[train]
epochs = 30

[sparsity]
schedule = "polynomial"
"""


@pytest.fixture
def models(tmp_path, monkeypatch):
    """A tmp ``models/`` with the recipes ``dense`` and ``og`` (both seeds 0 and 1), in place of the bundled one."""
    from pipeline import recipes, results

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "dense.toml").write_text(_DENSE)
    (folder / "og.toml").write_text(_PRUNED)
    monkeypatch.setattr(recipes, "MODELS_DIR", folder)
    monkeypatch.setattr(results, "MODELS_DIR", folder)
    return folder


def _measured(name, seed, value, **kw):
    """A ledger row measured with the current ``models/<name>.toml`` (under the current cycle model)."""
    from pipeline.recipes import load_recipe
    from pipeline.results import CYCLE_MODEL

    recipe = load_recipe(name, seed=seed)
    prune = "none" if recipe.sparsity.schedule == "fixed" else "output_gate"
    return _row(name, seed, value, prune=prune, units=8, baseline=recipe.baseline or None, config=recipe.config(),
                cycle_model=CYCLE_MODEL, **kw)


def test_merge_keeps_ledger_rows_of_unchanged_recipes_and_prefers_fresh_runs(models):
    from pipeline.results import merge

    ledger = [_measured("og", 1, 0.93), _measured("dense", 0, 0.95), _measured("og", 0, 0.94)]
    (models / "og.toml").write_text("# a new comment\n" + _PRUNED.replace("[model]", "[model]  # reordered"))
    fresh = [{**_measured("og", 0, 0.96), "source": "out"}]
    rows, dropped = merge(fresh, ledger)
    assert dropped == []
    assert [(r["recipe"], r["seed"]) for r in rows] == [("dense", 0), ("og", 0), ("og", 1)]  # sorted
    assert rows[1] == fresh[0]  # the fresh run replaces its ledger row
    assert rows[0] == ledger[1] and rows[2] == ledger[0]  # current cycle model: left as measured
    # merged rows carry the recipe's current baseline, not the one they were measured under
    (models / "dense2.toml").write_text(_DENSE)
    (models / "og.toml").write_text(_PRUNED.replace('baseline = "dense"', 'baseline = "dense2"'))
    rows, dropped = merge([], [{**_measured("og", 1, 0.93), "baseline": "dense"}])
    assert dropped == [] and rows[0]["baseline"] == "dense2"
    # [fpga] keys only the pnr stage: a row stays when it changes, and goes when a section it reads does
    row = _measured("og", 1, 0.93)
    (models / "og.toml").write_text(_PRUNED + "\n[fpga]\nlanes = 4\n")
    rows, dropped = merge([], [row])
    assert dropped == [] and rows[0]["config"]["fpga"]["lanes"] == 4
    (models / "og.toml").write_text(_PRUNED.replace("[train]", "[train]\nbatch_size = 7"))
    rows, dropped = merge([], [row])
    assert rows == [] and "train.batch_size" in dropped[0]


def test_merge_restates_ledger_rows_of_an_older_cycle_model(models):
    from pipeline.results import merge, restate_speedup

    old = {**_measured("og", 1, 0.93), "cycle_model": 1}
    rows, dropped = merge([], [old])
    assert dropped == [] and rows == [restate_speedup(old)]
    assert rows[0]["speedup_v1"] == 9.0 and rows[0]["speedup_basis"] == "mean columns" and rows[0]["float"] == 0.93


_TINY_ROWS = """seeds = [0]

[data]
name = "mnist_rows"

[model]
units = [8]

[hls]
lanes = 4
"""

_TINY_LM = """seeds = [0]

[data]
name = "ptb_chars"
seq_len = 5

[model]
units = [8]
embedding = 4
return_sequences = true

[hls]
lanes = 4
fold_embedding = true
"""


def test_restate_speedup_against_rows_worked_by_hand(models):
    """pipeline/accelerator.py's cycle model, cycles = INIT + sum_t ([cols_t > 0] (PICK_DEPTH + cols_t C +
    MAC_DEPTH) + G + GATE_DEPTH) with INIT = G + INIT_DEPTH, worked by hand for two tiny runs whose every step streams the row's
    mean columns (dense columns / ideal); the pipeline depths by name, the rest in numbers."""
    from pipeline.accelerator import GATE_DEPTH, INIT_DEPTH, MAC_DEPTH, PICK_DEPTH
    from pipeline.results import CYCLE_MODEL, restate_speedup

    (models / "tiny_rows.toml").write_text(_TINY_ROWS)
    (models / "tiny_lm.toml").write_text(_TINY_LM)
    # row-MNIST: T = 28 steps of 28 pixels; H = 8, P = 4: C = 4H/P = 8 cycles a column, U = H/P = 2 and
    # XS = ceil(28/4) = 7 scan iterations, so G = max(U, XS) = 7 sparse, U = 2 dense. Dense streams
    # 28 + 8 = 36 columns a step; ideal 4 is 36 / 4 = 9 columns a step sparse.
    dense = 2 + INIT_DEPTH + 28 * (PICK_DEPTH + 36 * 8 + MAC_DEPTH + 2 + GATE_DEPTH)
    sparse = 7 + INIT_DEPTH + 28 * (PICK_DEPTH + 9 * 8 + MAC_DEPTH + 7 + GATE_DEPTH)
    old = _row("tiny_rows", 0, 0.9, units=8, ideal=4.0, speedup=3.0, cycle_model=1)
    new = restate_speedup(old)
    assert new["speedup"] == pytest.approx(dense / sparse, rel=1e-12)
    assert (new["speedup_v1"], new["speedup_basis"], new["cycle_model"]) == (3.0, "mean columns", CYCLE_MODEL)
    kept = {k: v for k, v in new.items() if k not in ("speedup", "speedup_v1", "speedup_basis", "cycle_model")}
    assert kept == {k: v for k, v in old.items() if k not in ("speedup", "cycle_model")}
    # a folded-embedding LM: one token column a step in both modes and no x scan (XS = 0), so G = U = 2
    # both ways; T = seq_len = 5; dense 1 + 8 = 9 columns a step, ideal 3 is 3 a step sparse
    dense = 2 + INIT_DEPTH + 5 * (PICK_DEPTH + 9 * 8 + MAC_DEPTH + 2 + GATE_DEPTH)
    sparse = 2 + INIT_DEPTH + 5 * (PICK_DEPTH + 3 * 8 + MAC_DEPTH + 2 + GATE_DEPTH)
    lm = _row("tiny_lm", 0, 2.0, metric="bpc", units=8, ideal=3.0, speedup=2.0, cycle_model=1, fold_embedding=True)
    assert restate_speedup(lm)["speedup"] == pytest.approx(dense / sparse, rel=1e-12)
    # a row measured under the current model is exact already
    assert restate_speedup({**old, "cycle_model": CYCLE_MODEL}) == {**old, "cycle_model": CYCLE_MODEL}


def test_merge_drops_a_row_whose_recipe_changed_value(models):
    from pipeline.results import merge

    ledger = [_measured("og", 0, 0.94), _measured("dense", 0, 0.95)]
    (models / "og.toml").write_text(_PRUNED.replace("epochs = 30", "epochs = 31"))
    rows, dropped = merge([], ledger)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("dense", 0)]
    assert len(dropped) == 1 and dropped[0].startswith("og seed 0: models/og.toml changed")
    assert "train.epochs: 30 -> 31" in dropped[0] and "retrain" in dropped[0]
    # two changed keys: both named, in section.key order
    (models / "og.toml").write_text(_PRUNED.replace("epochs = 30", "epochs = 31").replace("gate_l1 = 1.0",
                                                                                          "gate_l1 = 0.5"))
    _, dropped = merge([], ledger)
    assert "(model.gate_l1: 1.0 -> 0.5; train.epochs: 30 -> 31)" in dropped[0]


def test_merge_drops_a_row_whose_seed_is_no_longer_listed(models):
    from pipeline.results import merge

    ledger = [_measured("og", 0, 0.94), _measured("og", 1, 0.93)]
    (models / "og.toml").write_text(_PRUNED.replace("seeds = [0, 1]", "seeds = [0]"))
    rows, dropped = merge([], ledger)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("og", 0)]
    assert dropped == ["og seed 1: models/og.toml no longer lists seed 1"]


def test_merge_drops_the_rows_of_a_deleted_recipe(models):
    from pipeline.results import merge

    ledger = [_measured("og", 0, 0.94), _measured("dense", 0, 0.95)]
    (models / "og.toml").unlink()
    rows, dropped = merge([], ledger)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("dense", 0)]
    assert len(dropped) == 1 and dropped[0].startswith("og seed 0: no such recipe")


def test_merge_reads_a_key_missing_from_a_measured_config_as_its_default(models):
    """A row measured before a key existed (its config lacks it) was measured with that key's default:
    kept while the recipe leaves the key at its default, dropped once the recipe sets another value."""
    from pipeline.results import merge

    row = _measured("og", 0, 0.94)
    del row["config"]["train"]["augment_shift"]
    del row["config"]["hls"]
    rows, dropped = merge([], [row])
    assert dropped == [] and len(rows) == 1
    (models / "og.toml").write_text(_PRUNED.replace("epochs = 30", "epochs = 30\naugment_shift = 2"))
    rows, dropped = merge([], [row])
    assert rows == [] and len(dropped) == 1 and "train.augment_shift: 0 -> 2" in dropped[0]
    (models / "og.toml").write_text(_PRUNED + "\n[hls]\nlanes = 4\n")
    rows, dropped = merge([], [row])
    assert rows == [] and "hls.lanes: 32 -> 4" in dropped[0]


def test_write_ledger_round_trips_and_refuses_two_configs_of_one_recipe(models, tmp_path):
    from pipeline.results import load_ledger, write_ledger

    rows = [_measured("dense", 0, 0.95, machine="CPU A", speedup_basis="mean columns"),
            _measured("dense", 1, 0.97, machine=None), _measured("og", 0, 0.94, lr_schedule="cosine")]
    path = tmp_path / "ledger.json"
    write_ledger(path, rows)
    assert load_ledger(path) == rows
    data = json.loads(path.read_text())
    assert sorted(data["configs"]) == ["dense", "og"]
    assert all("config" not in r for r in data["rows"])  # one copy of each configuration, in "configs"
    row_lines = [x for x in path.read_text().splitlines() if '"recipe": ' in x]
    assert len(row_lines) == 3  # one line per row
    other = {**rows[1], "config": {**rows[1]["config"], "train": {**rows[1]["config"]["train"], "epochs": 31}}}
    with pytest.raises(ValueError, match="dense carry two configurations"):
        write_ledger(tmp_path / "two.json", [rows[0], other])
    assert not (tmp_path / "two.json").exists()


def test_load_ledger_missing_is_empty_and_garbage_is_a_clear_error(tmp_path):
    from pipeline.results import load_ledger

    assert load_ledger(tmp_path / "none.json") == []
    for text in ("not json", '{"rows": 3}', '{"rows": [{"x": 1}]}', '{"rows": [{"recipe": "a"}]}', "[]",
                 '{"configs": {}}'):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match="bad.json is not a results ledger"):
            load_ledger(bad)


def test_committed_ledger_matches_the_bundled_recipes():
    """Each committed result row is a run of a bundled recipe (a seed it lists) measured with the recipe
    as it is now: editing a measured recipe without retraining it fails here (retrain, then `make results`)."""
    from pipeline.recipes import MODELS_DIR, load_recipe
    from pipeline.results import LEDGER, config_changes, load_ledger

    rows = load_ledger(MODELS_DIR.parent / "docs" / LEDGER)
    assert rows, "the committed ledger has no rows"
    runs = [(r["recipe"], r["seed"]) for r in rows]
    assert len(set(runs)) == len(runs), "two ledger rows of one run"
    for r in rows:
        assert (MODELS_DIR / f"{r['recipe']}.toml").is_file(), r["recipe"]
        recipe = load_recipe(r["recipe"])
        assert r["seed"] in recipe.seeds, f"{r['recipe']}: seed {r['seed']} not in seeds = {recipe.seeds}"
        assert config_changes(r["config"], recipe.config()) == [], f"{r['recipe']}: recipe changed since measured"
        assert r["baseline"] == (recipe.baseline or None), r["recipe"]


# ------------------------------------------------------------------------------ collect and main
_TRAIN = {"test": {"state_sparsity": {"lstm": 0.875}, "metric": "accuracy", "value": 0.9312}, "epochs": 30,
          "wall_s": 42.5, "machine": {"cpu": "CPU X"}}
_EMULATE = {"fixed": {"value": 0.9301}, "speedup": 6.25, "ideal_speedup": 7.5, "energy_ratio_model": 5.5}


@pytest.fixture
def one_run(models, tmp_path, monkeypatch):
    """``out/og/seed0/`` with train and emulate records (og's seed 1 and dense: not trained), and every stage
    runner of `pipeline.stages` made to fail the test: `collect` reads records only (`pipeline.records`)."""
    from pipeline import stages

    d = tmp_path / "out" / "og" / "seed0"
    d.mkdir(parents=True)
    (d / "train_metrics.json").write_text(json.dumps(_TRAIN))
    (d / "emulate.json").write_text(json.dumps(_EMULATE))
    for runner in ("run_train", "run_sweep", "run_hls", "run_csim", "run_emulate", "run_rtl"):
        monkeypatch.setattr(stages, runner, lambda *a, **k: pytest.fail("collect re-ran a stage"))
    return tmp_path / "out"


def test_collect_reads_the_records_of_up_to_date_runs(one_run, monkeypatch):
    from pipeline import records
    from pipeline.recipes import load_recipe
    from pipeline.results import CYCLE_MODEL, collect

    asked = []

    def status(stage, recipe, out, root):
        asked.append((stage, recipe.name, recipe.seed, Path(out), root))
        return "up to date"

    monkeypatch.setattr(records, "record_status", status)
    rows, notes = collect(one_run, "hls_x")
    assert notes == []
    assert sorted(asked) == [("emulate", "og", 0, one_run, "hls_x"), ("train", "og", 0, one_run, "hls_x")]
    assert len(rows) == 1
    r = rows[0]
    assert (r["recipe"], r["seed"], r["baseline"], r["config"]) == ("og", 0, "dense", load_recipe("og").config())
    assert (r["task"], r["units"], r["prune"], r["target"]) == ("mnist_rows", 8, "output_gate", 0.9)
    assert (r["sparsity"], r["metric"], r["float"], r["fixed"]) == (0.875, "accuracy", 0.9312, 0.9301)
    assert (r["speedup"], r["ideal"], r["energy"], r["epochs"], r["wall_s"]) == (6.25, 7.5, 5.5, 30, 42.5)
    assert (r["machine"], r["source"], r["cycle_model"]) == ("CPU X", "out", CYCLE_MODEL)


@pytest.mark.parametrize("stale_stage", ["train", "emulate"])
@pytest.mark.parametrize("state", ["stale", "missing"])
def test_collect_names_the_command_for_a_stale_or_missing_record(one_run, monkeypatch, stale_stage, state):
    from pipeline import records
    from pipeline.results import collect

    monkeypatch.setattr(records, "record_status", lambda stage, *a, **k: state if stage == stale_stage else "up to date")
    rows, notes = collect(one_run)
    assert rows == [] and len(notes) == 1
    assert notes[0].startswith(f"og seed 0: {stale_stage} record {state}")
    assert f"make {stale_stage} MODEL=og SEED=0" in notes[0]


def test_results_main_rebuilds_tables_from_the_ledger_without_out(tmp_path):
    """`make results` on a checkout with no trained models keeps the ledger's rows; --only-out drops them."""
    from pipeline.recipes import load_recipe
    from pipeline.results import CYCLE_MODEL, load_ledger, main, write_ledger

    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [_row(name, 0, value, prune=prune, baseline=load_recipe(name).baseline or None, cycle_model=CYCLE_MODEL,
                 config=load_recipe(name).config())
            for name, value, prune in (("mnist_rows_dense256", 0.955, "none"), ("mnist_rows_og90w", 0.945, "output_gate"))]
    write_ledger(docs / "results_rows.json", rows)
    got = main(out=tmp_path / "out", docs=docs)
    assert [(r["recipe"], r["seed"]) for r in got] == [("mnist_rows_dense256", 0), ("mnist_rows_og90w", 0)]
    assert "| -1.0 pts |" in _lines((docs / "results_table.md").read_text())[("mnist_rows_og90w", "0")]
    assert (docs / "results_mnist_rows.png").is_file()
    assert load_ledger(docs / "results_rows.json") == rows  # every measured number kept
    assert main(out=tmp_path / "out", docs=docs, only_out=True) == []
    assert load_ledger(docs / "results_rows.json") == []


def test_make_results_reproduces_the_published_tables_from_the_ledger_alone(tmp_path):
    """`results.main` with no trained models and a copy of the committed ledger writes the committed
    docs/results_table.md, docs/results_seeds.md and docs/results_quant.md again, byte for byte, and the ledger
    unchanged."""
    from pipeline.results import LEDGER, load_ledger, main

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(REPO / "docs" / LEDGER, docs / LEDGER)
    rows = main(out=tmp_path / "out", docs=docs)
    assert [(r["recipe"], r["seed"]) for r in rows] == [(r["recipe"], r["seed"]) for r in load_ledger(REPO / "docs" / LEDGER)]
    for name in ("results_table.md", "results_seeds.md", "results_quant.md", LEDGER):
        assert (docs / name).read_text() == (REPO / "docs" / name).read_text(), name


def _near(printed: str, exact: float, decimals: int) -> bool:
    """``printed`` is ``exact`` rounded to ``decimals`` places (within half a unit of the last one)."""
    return abs(float(printed) - exact) <= 0.5 * 10.0**-decimals * (1 + 1e-9) + 1e-12


def _cells(path: Path) -> dict[tuple[str, str], list[str]]:
    """The data rows of a committed markdown table as cells, keyed by (recipe, seed) as printed in
    results_table.md (a recipe has a row per seed) and by (recipe, "") in results_seeds.md."""
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            out[(cells[0].strip("`"), cells[3] if path.name == "results_table.md" else "")] = cells
    return out


def _published():
    """(ledger rows, the paired baseline row or None and whether a run is itself a baseline, per run),
    the pairing worked out here: a recipe's ``baseline`` (as its file says now) at the same seed."""
    from pipeline.recipes import load_recipe
    from pipeline.results import LEDGER, load_ledger

    rows = load_ledger(REPO / "docs" / LEDGER)
    by_run = {(r["recipe"], r["seed"]): r for r in rows}
    baseline = {name: load_recipe(name).baseline for name in {r["recipe"] for r in rows}}
    pairs = {}
    for r in rows:
        own = baseline[r["recipe"]]
        pairs[(r["recipe"], r["seed"])] = (by_run.get((own, r["seed"])) if own else None,
                                           not own and r["prune"] == "none")
    return rows, pairs


def _gap(r: dict, base: dict) -> float:
    """Points for accuracy, percent for BPC (lower is better, so a relative change)."""
    return 100 * (r["float"] - base["float"]) if r["metric"] == "accuracy" else 100 * (r["float"] / base["float"] - 1)


def test_published_run_table_holds_the_ledger_numbers():
    """Every cell of docs/results_table.md that is a number, against the ledger row of its run (recipe,
    seed), rounded as printed; the gap to the baseline run of the same seed computed here. One table row
    per ledger row, no other."""
    rows, pairs = _published()
    table_rows = _cells(REPO / "docs" / "results_table.md")
    assert sorted(table_rows) == sorted((r["recipe"], str(r["seed"])) for r in rows)
    for r in rows:
        key = (r["recipe"], str(r["seed"]))
        c = table_rows[key]
        assert c[1:4] == [str(r["units"]), str(r["epochs"]), str(r["seed"])], key
        assert c[5] == "-" if r["target"] is None else _near(c[5], r["target"], 2), key
        assert c[6].endswith("%") and _near(c[6][:-1], 100 * r["sparsity"], 1), key
        metric, value = c[7].split()
        assert metric == r["metric"] and _near(value, r["float"], 4) and _near(c[8], r["fixed"], 4), key
        base, is_baseline = pairs[(r["recipe"], r["seed"])]
        if base is None:
            assert c[9] == ("baseline" if is_baseline else "n/a"), key
        else:
            gap, unit = re.fullmatch(r"([+-]\d+\.\d)(%? .*)", c[9]).groups()
            assert unit == (" pts" if r["metric"] == "accuracy" else "% BPC") and _near(gap, _gap(r, base), 1), key
        speedup, star, ideal = re.fullmatch(r"(\d+\.\d\d)x(\*?) \((\d+\.\d\d)x\)", c[10]).groups()
        assert _near(speedup, r["speedup"], 2) and _near(ideal, r["ideal"], 2), key
        assert (star == "*") == (r.get("speedup_basis") == "mean columns"), key
        assert c[11].endswith("x") and _near(c[11][:-1], r["energy"], 2), key
        assert c[12].endswith(" s") and _near(c[12][:-2], r["wall_s"], 0), key


def test_published_seed_table_holds_the_ledger_statistics():
    """docs/results_seeds.md against statistics computed here with numpy from the ledger: per recipe
    with >= 2 measured seeds, its seeds, the mean state sparsity, the metric's mean +- sample sd, and
    the paired gaps to the baseline run of the same seed (mean +- sd and each seed's)."""
    import numpy as np

    rows, pairs = _published()
    families: dict[str, list[dict]] = {}
    for r in rows:
        families.setdefault(r["recipe"], []).append(r)
    families = {name: sorted(rs, key=lambda r: r["seed"]) for name, rs in families.items() if len(rs) >= 2}
    table_rows = _cells(REPO / "docs" / "results_seeds.md")
    assert sorted(name for name, _ in table_rows) == sorted(families)
    for name, rs in families.items():
        c = table_rows[(name, "")]
        assert c[2] == ", ".join(str(r["seed"]) for r in rs), name
        sparsity = np.mean([r["sparsity"] for r in rs])
        assert c[3].endswith("%") and _near(c[3][:-1], 100 * sparsity, 1), name
        values = np.array([r["float"] for r in rs])
        metric, mean, pm, sd = c[4].split()
        assert (metric, pm) == (rs[0]["metric"], "+-"), name
        assert _near(mean, values.mean(), 4) and _near(sd, values.std(ddof=1), 4), name
        gaps = np.array([_gap(r, pairs[(name, r["seed"])][0]) for r in rs if pairs[(name, r["seed"])][0] is not None])
        if pairs[(name, rs[0]["seed"])][1]:
            assert c[5] == "baseline", name
            continue
        assert len(gaps), f"{name}: a pruned recipe with no baseline run of any of its seeds"
        m = re.fullmatch(r"([+-]\d+\.\d)(?: \+- (\d+\.\d))?( pts|% BPC) \(([^)]*)\)(; pairs across CPU models: .*)?",
                         c[5])
        assert m, (name, c[5])
        assert m[3] == (" pts" if rs[0]["metric"] == "accuracy" else "% BPC"), name
        assert _near(m[1], gaps.mean(), 1), name
        assert (m[2] is None) == (len(gaps) == 1) and (m[2] is None or _near(m[2], gaps.std(ddof=1), 1)), name
        per_seed = m[4].split(", ")
        assert len(per_seed) == len(gaps) and all(_near(p, g, 1) for p, g in zip(per_seed, gaps, strict=True)), name
        machines = [{x for x in (r.get("machine"), (pairs[(name, r["seed"])][0] or {}).get("machine")) if x} for r in rs]
        assert (m[5] is not None) == any(len(pair) > 1 for pair in machines), name


def _md_rows(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| `") or line.startswith("| ") and "(`" in line.split("|")[1]]


def test_results_md_states_what_make_results_generates():
    """docs/RESULTS.md's numbers are the generated ones: its over-seeds table is docs/results_seeds.md
    verbatim, and every row of the at-a-glance tables (seeds, metric mean +- sd, gap mean +- sd, mean
    sparsity, speedup range over the seeds) matches the generated seed table and per-run table."""
    import re

    from pipeline.recipes import MODELS_DIR

    docs = MODELS_DIR.parent / "docs"
    text = (docs / "RESULTS.md").read_text()
    seeds_md = (docs / "results_seeds.md").read_text().strip()
    assert seeds_md in text
    seeds = {r[0].strip("`"): r for r in _md_rows(seeds_md)}
    runs: dict[str, list[float]] = {}
    for r in _md_rows((docs / "results_table.md").read_text()):
        runs.setdefault(r[0].strip("`"), []).append(float(r[10].split("x")[0]))
    glance = text[text.index("## Results at a glance"):text.index("## Machine and commands")]
    checked = 0
    for row in _md_rows(glance):
        name = re.search(r"\(`(\w+)`\)", row[0]).group(1)
        n_seeds, metric, gap, sparsity, speedup = row[2], row[3], row[4], row[5], row[6]
        got = seeds[name]
        assert len(got[2].split(",")) == int(n_seeds), name
        assert got[4].endswith(metric), (name, got[4], metric)
        assert got[5].startswith(gap.replace(" pts", "").replace("%", "")), (name, got[5], gap)
        assert got[3] == sparsity, name
        lo, hi = min(runs[name]), max(runs[name])
        assert speedup == (f"{lo:.2f}x" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}x"), (name, speedup)
        checked += 1
    lines = glance.splitlines()
    data_rows = [line for k, line in enumerate(lines) if line.startswith("| ") and not line.startswith("|---")
                 and not (k + 1 < len(lines) and lines[k + 1].startswith("|---"))]  # not a header
    assert checked == len(data_rows) > 0
