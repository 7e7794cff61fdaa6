"""`make results` tables: baseline matching and the per-seed summary (pure functions, no training)."""

from __future__ import annotations

import pytest

from pipeline.results import _family, plot, seed_table, table


def _row(recipe, seed, value, prune="output_gate", metric="accuracy", units=256, epochs=30, **kw):
    return {"recipe": recipe, "task": "mnist_rows" if metric == "accuracy" else "ptb_chars", "units": units,
            "prune": prune, "gate_l1": 1.0, "target": None if prune == "none" else 0.9, "sparsity": 0.0
            if prune == "none" else 0.9, "metric": metric, "float": value, "fixed": value, "speedup": 9.0,
            "ideal": 9.5, "energy": 8.9, "epochs": epochs, "wall_s": 1.0, "seed": seed, "l1_begin_epoch": 0,
            "teacher": None, **kw}


@pytest.mark.parametrize("name, family", [("a_seed3", "a"), ("a", "a"), ("a_seedx", "a_seedx"),
                                          ("a_seed12", "a"), ("seed", "seed")])
def test_family_strips_only_a_numeric_seed_suffix(name, family):
    assert _family(name) == family


def test_seed_table_pairs_each_seed_with_its_own_dense_run():
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_seed1", 1, 0.97, prune="none"),
            _row("og", 0, 0.94), _row("og_seed1", 1, 0.97),
            _row("late", 0, 0.95, l1_begin_epoch=5, teacher="dense")]
    text = seed_table(rows)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert set(lines) == {"`dense`", "`og`"}  # "late" has one seed: no summary row
    # og: deltas -1.0 and 0.0 points -> mean -0.5, sd 0.7071; accuracy mean 0.955, sd 0.0212
    assert "-0.5 +- 0.7 pts (-1.0, +0.0)" in lines["`og`"]
    assert "accuracy 0.9550 +- 0.0212" in lines["`og`"]
    assert "| baseline |" in lines["`dense`"]
    # the main table: seed 1 compares with seed 1's dense run; words for late L1 and distillation
    main = table(rows)
    assert "| `og_seed1` |" in main and "| +0.0 pts |" in main.split("`og_seed1`")[1].split("\n")[0]
    assert "output gate, L1 1 from epoch 6, distilled" in main
    assert "| state, L1 0.5 on o_t |" in table([_row("s", 0, 0.9, prune="state", gate_l1=0.5)])
    folded = table([_row("dense", 0, 0.95, prune="none"), _row("og_fold", 0, 0.94, fold_embedding=True)])
    assert "| output gate, L1 1; accelerator: folded embedding |" in folded  # same training, same dense run
    assert "| -1.0 pts |" in folded.split("`og_fold`")[1].split("\n")[0]
    # a fine-tuned run compares with the dense run fine-tuned from the same model, not a fresh one
    tuned = rows + [_row("og_ft", 0, 0.96, init_from="dense"), _row("dense_ft", 0, 0.99, prune="none",
                                                                   init_from="dense")]
    line = [x for x in table(tuned).splitlines() if x.startswith("| `og_ft`")][0]
    assert "| -3.0 pts |" in line and "fine-tuned from `dense`" in line


def test_cosine_lr_run_compares_with_the_dense_run_of_the_same_lr_schedule():
    """A cosine-LR pruned run pairs with the cosine-LR dense run; ledger rows without the key are
    constant-LR rows."""
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_cos", 0, 0.97, prune="none", lr_schedule="cosine"),
            _row("og", 0, 0.94, lr_schedule="constant"), _row("og_cos", 0, 0.96, lr_schedule="cosine")]
    lines = {x.split("|")[1].strip(): x for x in table(rows).splitlines()[2:]}
    assert "| -1.0 pts |" in lines["`og_cos`"] and "output gate, L1 1, cosine LR |" in lines["`og_cos`"]
    assert "| -1.0 pts |" in lines["`og`"] and "cosine" not in lines["`og`"]
    assert "| baseline |" in lines["`dense_cos`"] and "| baseline |" in lines["`dense`"]


def test_step_lr_and_unpruned_last_state_rows():
    """A step-LR run pairs with the dense run of the same drop (epoch and factor, in words); an
    ``prune_last = false`` run is labelled "h_T unpruned" (ledger rows without the key: pruned) and
    pairs with the plain dense run of its seed."""
    from pipeline.results import _lr_text

    step = _lr_text({"lr_schedule": "step", "lr_drop_epoch": 20, "lr_drop_factor": 0.1})
    assert step == "step x0.1 from epoch 21"
    assert _lr_text({"lr_schedule": "cosine", "lr_drop_epoch": 0, "lr_drop_factor": 0.1}) == "cosine"
    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_step", 0, 0.97, prune="none", lr_schedule=step),
            _row("dense_step5", 0, 0.90, prune="none", lr_schedule="step x0.1 from epoch 6"),
            _row("og_last", 0, 0.945, prune_last=False), _row("og_last_step", 0, 0.965, prune_last=False, lr_schedule=step)]
    lines = {x.split("|")[1].strip(): x for x in table(rows).splitlines()[2:]}
    assert "| output gate, L1 1, h_T unpruned |" in lines["`og_last`"] and "| -0.5 pts |" in lines["`og_last`"]
    assert "| output gate, L1 1, step x0.1 from epoch 21 LR, h_T unpruned |" in lines["`og_last_step`"]
    assert "| -0.5 pts |" in lines["`og_last_step`"]  # against dense_step, not dense_step5 or dense
    assert "h_T" not in lines["`dense_step`"] and "h_T" not in table([_row("og", 0, 0.9)])


def test_shift_augmented_run_pairs_with_the_dense_run_of_the_same_shifts():
    """A run trained on shifted images (``augment_shift``) compares with the dense run trained on the same
    shifts, says so in words, and ledger rows without the key are unaugmented."""
    step = "step x0.1 from epoch 21"
    rows = [_row("dense", 0, 0.95, prune="none", lr_schedule=step), _row("og", 0, 0.94, lr_schedule=step),
            _row("dense_aug", 0, 0.97, prune="none", lr_schedule=step, augment_shift=2),
            _row("og_aug", 0, 0.968, lr_schedule=step, prune_last=False, augment_shift=2),
            _row("og_aug1", 0, 0.90, lr_schedule=step, augment_shift=1)]
    lines = {x.split("|")[1].strip(): x for x in table(rows).splitlines()[2:]}
    assert "| -0.2 pts |" in lines["`og_aug`"]  # against dense_aug, not dense
    assert "| output gate, L1 1, step x0.1 from epoch 21 LR, h_T unpruned, train images shifted <= 2 px |" in lines["`og_aug`"]
    assert "| none, step x0.1 from epoch 21 LR, train images shifted <= 2 px |" in lines["`dense_aug`"]
    assert "| -1.0 pts |" in lines["`og`"] and "shifted" not in lines["`og`"] and "shifted" not in lines["`dense`"]
    assert "| n/a |" in lines["`og_aug1`"]  # no dense run with 1-pixel shifts


def test_seed_table_flags_pairs_trained_on_two_cpu_models():
    """Training is bit-reproducible on one CPU model only: a family whose run and same-seed dense run
    were trained on different recorded CPUs says so; unrecorded (older) rows are not guessed at."""
    same = [_row("dense", 0, 0.95, prune="none", machine="A"), _row("dense_seed1", 1, 0.97, prune="none", machine="A"),
            _row("og", 0, 0.94, machine="A"), _row("og_seed1", 1, 0.97, machine="A")]
    line = [x for x in seed_table(same).splitlines() if x.startswith("| `og` |")][0]
    assert "CPU" not in line and line.endswith("(-1.0, +0.0) |")
    mixed = same[:3] + [_row("og_seed1", 1, 0.97, machine="B")]
    line = [x for x in seed_table(mixed).splitlines() if x.startswith("| `og` |")][0]
    assert line.endswith("(-1.0, +0.0); pairs across CPU models: A, B |")
    unknown = same[:3] + [_row("og_seed1", 1, 0.97)]  # no "machine": trained before it was recorded
    assert "CPU" not in seed_table(unknown)


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


def test_seed_table_bpc_is_relative():
    rows = [_row("d", 0, 2.0, prune="none", metric="bpc"), _row("d_seed1", 1, 1.0, prune="none", metric="bpc"),
            _row("p", 0, 2.2, metric="bpc"), _row("p_seed1", 1, 1.05, metric="bpc")]
    line = [x for x in seed_table(rows).splitlines() if x.startswith("| `p`")][0]
    assert "+7.5 +- 3.5% BPC (+10.0, +5.0)" in line


def test_every_bundled_recipe_loads_and_names_known_recipes():
    """Each models/*.toml parses with known keys; a teacher or init_from names another bundled recipe of
    the same task, and a recipe's seed suffix matches its train.seed."""
    from pipeline.recipes import MODELS_DIR, load_recipe

    names = {p.stem for p in MODELS_DIR.glob("*.toml")}
    assert len(names) > 20
    for name in sorted(names):
        recipe = load_recipe(name)
        for key in ("teacher", "init_from"):
            ref = recipe["train"][key]
            if ref:
                assert ref in names, f"{name}: train.{key} = {ref!r} is not a bundled recipe"
                assert load_recipe(ref)["data"]["name"] == recipe["data"]["name"], name
        family = _family(name)
        if family != name:
            assert int(name.rpartition("_seed")[2]) == recipe["train"]["seed"], name


def test_plot_groups_runs_by_pruning_width_and_variant(tmp_path):
    rows = [_row("dense", 0, 0.95, prune="none"), _row("og", 0, 0.94), _row("og_seed1", 1, 0.93),
            _row("kd", 0, 0.955, teacher="dense"), _row("ft", 0, 0.92, init_from="dense"),
            _row("s", 0, 0.9, prune="state", gate_l1=0.0, units=128)]
    labels = plot(rows, "mnist_rows", tmp_path / "p.png")
    assert sorted(labels) == sorted(["output gate, H=256", "output gate, H=256, distilled",
                                     "output gate, H=256, fine-tuned from dense", "state, H=128"])
    assert (tmp_path / "p.png").stat().st_size > 10_000
    assert plot(rows, "ptb_chars", tmp_path / "q.png") == [] and not (tmp_path / "q.png").exists()


def test_ledger_merge_keeps_measured_rows_of_unchanged_recipes_only():
    from pipeline.results import _recipe_sha, merge, restate_speedup

    sha = _recipe_sha("mnist_rows_og90w")
    kept = _row("mnist_rows_og90w", 0, 0.95, recipe_sha256=sha)
    stale = _row("mnist_rows_dense256", 0, 0.96, prune="none", recipe_sha256="0" * 64)
    gone = _row("no_such_recipe", 0, 0.5, recipe_sha256=sha)
    replaced = _row("mnist_rows_og90kd02", 0, 0.90, recipe_sha256=_recipe_sha("mnist_rows_og90kd02"))
    fresh = [_row("mnist_rows_og90kd02", 0, 0.97, source="out")]
    rows, dropped = merge(fresh, [gone, stale, kept, replaced])
    assert [r["recipe"] for r in rows] == ["mnist_rows_og90kd02", "mnist_rows_og90w"]
    assert rows[0]["float"] == 0.97 and rows[1] == restate_speedup(kept)  # a ledger row is restated
    assert rows[1]["float"] == kept["float"] and rows[1]["speedup_v1"] == kept["speedup"] == 9.0
    assert len(dropped) == 2
    assert any("no_such_recipe" in d and "no such recipe" in d for d in dropped)
    assert any("mnist_rows_dense256" in d and "changed" in d for d in dropped)


def test_restate_speedup_by_hand():
    """A row of the first cycle model gets the current model's speedup from its mean columns per step;
    a row already under the current model is left as it is."""
    from pipeline.results import CYCLE_MODEL, restate_speedup

    # mnist_rows_og90w: H = 256, lanes 32 -> C = 32, U = 8, XS = ceil(28 / 32) = 1, G = 8 both modes, T = 28
    old = _row("mnist_rows_og90w", 0, 0.95, ideal=9.5, speedup=9.3)
    new = restate_speedup(old)
    mean_cols = (28 + 256) / 9.5
    dense = 8 + 28 * ((28 + 256) * 32 + 3 + 8 + 7)
    sparse = 8 + 28 * (mean_cols * 32 + 3 + 8 + 7)
    assert new["speedup"] == pytest.approx(dense / sparse, rel=1e-12)
    assert new["speedup_v1"] == 9.3 and new["speedup_basis"] == "mean columns" and new["cycle_model"] == CYCLE_MODEL
    assert restate_speedup(new) is new
    current = _row("mnist_rows_og90w", 0, 0.95, cycle_model=CYCLE_MODEL)
    assert restate_speedup(current) is current


def test_load_ledger_missing_is_empty_and_garbage_is_a_clear_error(tmp_path):
    from pipeline.results import load_ledger

    assert load_ledger(tmp_path / "none.json") == []
    for text in ("not json", '{"rows": 3}', '{"rows": [{"x": 1}]}', "[]"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match="bad.json is not a results ledger"):
            load_ledger(bad)


def test_results_main_rebuilds_tables_from_the_ledger_without_out(tmp_path):
    """`make results` on a checkout with no trained models keeps the committed rows; --only-out drops them."""
    import json

    from pipeline.results import _recipe_sha, main

    docs = tmp_path / "docs"
    docs.mkdir()
    rows = [_row("mnist_rows_dense256", 0, 0.955, prune="none"), _row("mnist_rows_og90w", 0, 0.945)]
    for r in rows:
        r["recipe_sha256"] = _recipe_sha(r["recipe"])
    (docs / "results_rows.json").write_text(json.dumps({"rows": rows}))
    got = main(out=tmp_path / "out", docs=docs)
    assert [r["recipe"] for r in got] == ["mnist_rows_dense256", "mnist_rows_og90w"]
    line = [x for x in (docs / "results_table.md").read_text().splitlines() if "`mnist_rows_og90w`" in x][0]
    assert "| -1.0 pts |" in line
    assert (docs / "results_mnist_rows.png").is_file()
    from pipeline.results import restate_speedup

    # the ledger keeps every measured number; speedups of the first cycle model are restated (and kept as v1)
    assert json.loads((docs / "results_rows.json").read_text())["rows"] == [restate_speedup(r) for r in rows]
    assert main(out=tmp_path / "out", docs=docs, only_out=True) == []
    assert json.loads((docs / "results_rows.json").read_text())["rows"] == []


def test_committed_ledger_matches_the_bundled_recipes():
    """Each committed result row was measured with the recipe file as it is now: editing a measured
    recipe without retraining it fails here (retrain, then `make results`)."""
    from pipeline.recipes import MODELS_DIR
    from pipeline.results import LEDGER, _recipe_sha, load_ledger

    rows = load_ledger(MODELS_DIR.parent / "docs" / LEDGER)
    assert len(rows) >= 60
    for r in rows:
        assert (MODELS_DIR / f"{r['recipe']}.toml").is_file(), r["recipe"]
        assert r["recipe_sha256"] == _recipe_sha(r["recipe"]), f"{r['recipe']}: recipe changed since measured"


def test_table_cells_on_synthetic_rows():
    """Every cell of `table()` for hand-made rows, computed by hand: the gap to dense in points
    (accuracy) or percent (BPC), n/a without a dense run, and the restated-speedup footnote."""
    rows = [_row("dense", 0, 0.95, prune="none", sparsity=0.0),
            _row("og", 0, 0.93, fixed=0.925, sparsity=0.9123, speedup=7.254, ideal=8.0, energy=6.5, wall_s=123.4,
                 speedup_basis="mean columns"),
            _row("lonely", 0, 0.9, units=64),
            _row("pd", 1, 2.0, prune="none", metric="bpc", units=128),
            _row("p", 1, 2.1, metric="bpc", units=128, gate_l1=0.0, prune="state", sparsity=0.5)]
    lines = table(rows).splitlines()
    assert lines[0].startswith("| recipe | units | epochs | seed | pruning | target | state sparsity |")
    cells = {line.split(" | ")[0][3:-1]: [c.strip() for c in line.strip("| ").split(" | ")] for line in lines[2:7]}
    assert cells["dense"] == ["`dense`", "256", "30", "0", "none", "-", "0.0%", "accuracy 0.9500", "0.9500",
                              "baseline", "9.00x (9.50x)", "8.90x", "1 s"]
    # 100 * (0.93 - 0.95) = -2.0 points; 7.254 -> 7.25x, restated (*); 123.4 s -> 123 s
    assert cells["og"] == ["`og`", "256", "30", "0", "output gate, L1 1", "0.90", "91.2%", "accuracy 0.9300", "0.9250",
                           "-2.0 pts", "7.25x* (8.00x)", "6.50x", "123 s"]
    assert cells["lonely"][9] == "n/a"  # no dense run of 64 units
    # 100 * (2.1 / 2.0 - 1) = +5.0 % BPC against the dense run of the same width and seed
    assert cells["p"] == ["`p`", "128", "30", "1", "state", "0.90", "50.0%", "bpc 2.1000", "2.1000", "+5.0% BPC",
                          "9.00x (9.50x)", "8.90x", "1 s"]
    assert lines[7] == "" and lines[8].startswith("Speedups are modelled cycles") and len(lines) == 9
    assert "Speedups" not in table(rows[:1] + rows[2:])  # no restated row: no footnote


def test_gap_plot_shows_each_pruned_family_against_the_target(tmp_path):
    """One line per pruned family with >= 2 paired seeds (dense families and single runs left out),
    sorted by mean gap; the task without such families gets no file."""
    from pipeline.results import _seed_families, gap_plot

    rows = [_row("dense", 0, 0.95, prune="none"), _row("dense_seed1", 1, 0.97, prune="none"),
            _row("og", 0, 0.94), _row("og_seed1", 1, 0.97), _row("late", 0, 0.90), _row("late_seed1", 1, 0.93),
            _row("single", 0, 0.99)]
    assert _seed_families(rows)["late"][1] == pytest.approx([-5.0, -4.0])
    assert gap_plot(rows, "mnist_rows", tmp_path / "g.png") == ["late", "og"]
    assert (tmp_path / "g.png").stat().st_size > 10_000
    assert gap_plot(rows, "ptb_chars", tmp_path / "h.png") == [] and not (tmp_path / "h.png").exists()
