"""``make results``: the paper-results tables and plots from the stage records of every run under ``out/``.

A run is a recipe at one of its seeds. For each run with ``<out>/<recipe>/seed<N>/train_metrics.json``
the rows read the train metrics and the emulate record (fixed-point metric, modelled speedup); nothing
is re-run: a run whose train or emulate record is missing or stale (other inputs or code, see
`pipeline.records.record_status`) is named with the command that brings it up to date. Writes
``docs/results_table.md`` (one row per run) and ``docs/results_seeds.md`` (mean +- sd over the seeds of
each recipe), ``docs/results_<task>.png`` (state sparsity vs metric, dense runs as horizontal lines) and
``docs/results_<task>_gaps.png`` (paired gap to the recipe's ``baseline`` run of the same seed, with the
issue's target) and ``docs/results_quant.md`` (quantisation-aware runs against the float run of the same
seed, with their weight memory: `quant_table`) and ``docs/results_weight.md`` (weight-pruned runs against
their state-only run of the same seed: `weight_table`).

Trained models are build outputs and hours of training do not fit every checkout, so the measured rows
also live in a committed ledger, ``docs/results_rows.json``, keyed by (recipe, seed) and holding the
normalised recipe each row was measured with (`Recipe.config`): a run found under ``out/`` replaces its
row; a row with no run stays as long as its recipe still lists the seed and still parses to the same
configuration (comments, key order and keys left at their default do not count; a key added to the
schema since counts as its default), otherwise it is dropped with a line naming the changed keys.
``--only-out`` ignores the ledger.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import accelerator
from pipeline.recipes import MODELS_DIR, Recipe, default_config, load_recipe
from pipeline.util import atomic_write_text, stage

LEDGER = "results_rows.json"
SKIP = ("mnist_rows_demo",)  # the demo's run is reported by make demo (its own lanes and test vectors)


def _row(run: Recipe, train: dict, emu: dict) -> dict:
    """One results row from a run's train metrics and emulate record."""
    s = run.sparsity
    return {
        "recipe": run.name, "seed": run.seed, "config": run.config(), "baseline": run.baseline or None,
        "task": run.data.name, "units": run.model.units[0],
        "prune": "none" if s.schedule == "fixed" and not s.threshold else run.model.prune,
        "gate_l1": run.model.gate_l1, "target": None if s.schedule == "fixed" else s.target,
        "sparsity": list(train["test"]["state_sparsity"].values())[0], "metric": train["test"]["metric"],
        "float": train["test"]["value"], "fixed": emu["fixed"]["value"], "speedup": emu["speedup"],
        "ideal": emu["ideal_speedup"], "energy": emu["energy_ratio_model"], "epochs": train["epochs"],
        "wall_s": train["wall_s"], "l1_begin_epoch": s.l1_begin_epoch,
        "teacher": run.train.teacher or None, "init_from": run.train.init_from or None,
        "lr_schedule": _lr_text(run.train), "fold_embedding": run.hls.fold_embedding,
        "prune_last": bool(run.model.prune_last), "augment_shift": int(run.train.augment_shift),
        "source": "out", "cycle_model": CYCLE_MODEL,
        "quant": run.quant.model_dump() if run.quant.enabled else None,
        "max_abs_err_vs_keras": emu.get("max_abs_err_vs_float"),
        "machine": (train.get("machine") or {}).get("cpu"),  # None: trained before it was recorded
        **_weight_fields(run, train, emu),
    }


def _weight_fields(run: Recipe, train: dict, emu: dict) -> dict:
    """A weight-pruned run's fields (none otherwise, so every other row reads as before): its target and
    measured weight sparsity, the modelled speedup of the weight-sparse engine over dense and its ideal,
    and the first layer's KE and weight memory ratio (values + rows against dense)."""
    if not run.sparsity.weight_target:
        return {}
    layers = list(emu.get("layers", {}).values())
    first = layers[0] if layers else {}
    return {"weight_target": run.sparsity.weight_target,
            "weight_sparsity": list((train.get("weight_sparsity") or {0: None}).values())[0],
            "speedup_weight": emu.get("speedup_weight_sparse"), "ideal_weight": emu.get("ideal_speedup_weight_sparse"),
            "weight_chunks": first.get("weight_chunks"), "weight_memory_ratio": first.get("weight_memory_ratio")}


def collect(out="out", root="hls_project") -> tuple[list[dict], list[str]]:
    """Rows of every run under ``out/`` whose train and emulate records are up to date, and one line per
    run that has a trained model but a missing or stale record (with the command to bring it up to
    date). Reads records only."""
    from pipeline import records
    from pipeline.recipes import run_dir

    rows, notes = [], []
    for path in sorted(MODELS_DIR.glob("*.toml")):
        if path.stem in SKIP:
            continue
        seeds = load_recipe(path).seeds
        for extra in sorted((Path(out) / path.stem).glob("seed*/train_metrics.json")):
            if extra.parent.name[4:] not in {str(s) for s in seeds}:
                notes.append(f"{path.stem}: {extra.parent} is a run of a seed the recipe does not list {list(seeds)}")
        for seed in seeds:
            run = load_recipe(path, seed=seed)
            d = run_dir(run, out)
            if not (d / "train_metrics.json").is_file():
                continue
            cmd = f"MODEL={run.name} SEED={seed}"
            status = {st: records.record_status(st, run, out, root) for st in ("train", "emulate")}
            if status["train"] != "up to date":
                notes.append(f"{run.name} seed {seed}: train record {status['train']} (make train {cmd})")
                continue
            if status["emulate"] != "up to date":
                notes.append(f"{run.name} seed {seed}: emulate record {status['emulate']} "
                             f"(make hls {cmd} && make emulate {cmd})")
                continue
            row = _row(run, json.loads((d / "train_metrics.json").read_text()),
                       json.loads((d / "emulate.json").read_text()))
            project = records.project_dir(run, root)
            if (project / "skiplstm_ir.json").is_file():
                row["weight_memory"] = weight_memory(project)
            rows.append(row)
    return rows, notes


def weight_memory(project: Path) -> dict:
    """The weights a generated project stores, from its saved IR: ``{"bits", "count", "lstm_bits", "types"}``
    (bits = sum over weight tensors of entries x type width, the LUTs excepted; ``types``: tensor -> C++ type)."""
    import numpy as np

    from pipeline import ir as model_ir

    ir = model_ir.load(project)
    bits = count = lstm_bits = 0
    types = {}
    for layer in ir.layers:
        tensors = {"lstm": ("kernel", "recurrent", "bias"), "dense": ("weight", "bias"),
                   "embedding": ("embeddings",)}.get(layer.kind, ())
        for name in tensors:
            t = getattr(layer, name)
            n = int(np.size(t.raw))
            bits += n * t.type.width
            count += n
            lstm_bits += n * t.type.width if layer.kind == "lstm" else 0
            types[f"{layer.name}.{name}"] = t.type.cpp()
    return {"bits": bits, "count": count, "lstm_bits": lstm_bits, "types": types}


# pipeline/accelerator.py's schedule: 1 the first kernel; 2 since issue 21 (init, x scan in the gate loop,
# one drain); since issue 28 (the timing-closed pipeline: picker fill, deeper MAC and gate pipelines) the
# model's name carries its depths, so that a row restated under other depths is restated again
CYCLE_MODEL = accelerator.model_version()


def restate_speedup(row: dict) -> dict:
    """A ledger row measured under an older cycle model, with its speedup restated under the current one
    from its own numbers. The per-step counts were not kept, only the ratio ``ideal`` = dense / sparse
    MACs, and MACs are proportional to columns, so a sparse step streams ``m = dense_cols / ideal``
    columns on average (``dense_cols = n_in + H``, or 1 + H for a folded embedding) and

        speedup = cycles(dense_cols, dense) / cycles(m, sparse)

    with ``cycles`` a sequence's cycles at that many columns per step (`pipeline.costs.mean_column_cycles`
    over `pipeline.accelerator`'s schedule, the recipe's lanes, and its first layer's steps and inputs,
    `pipeline.network.lstm_input_shape`). A step with no column at all (it pays no stream drain) is not
    seen: the restated speedup is slightly low. Marked ``speedup_basis = "mean columns"``; rows measured
    under the current model are exact and returned as they are."""
    from pipeline import accelerator, costs
    from pipeline.network import lstm_input_shape

    if row.get("cycle_model") == CYCLE_MODEL:
        return row
    recipe = load_recipe(row["recipe"], seed=row["seed"])
    steps, n_in = lstm_input_shape(recipe)
    shape = accelerator.LayerShape(n_in, int(row["units"]), int(recipe.hls.lanes), bool(row.get("fold_embedding")))
    dense_cols = shape.dense_cols_x + shape.units
    dense = costs.mean_column_cycles(shape, steps, dense_cols, sparse=False)
    sparse = costs.mean_column_cycles(shape, steps, dense_cols / float(row["ideal"]), sparse=True)
    return {**row, "speedup_v1": row.get("speedup_v1", row["speedup"]), "speedup": dense / sparse,
            "speedup_basis": "mean columns", "cycle_model": CYCLE_MODEL}


UNREAD_SECTIONS = ("fpga",)  # recipe sections no results row depends on: [fpga] keys only the pnr stage


def config_changes(measured: dict, current: dict) -> list[str]:
    """The keys where a recipe's current normalised configuration differs from the one a row was
    measured with, as ``section.key: old -> new``; a key the row does not have (added to the schema
    later) counts as its default value. Sections in UNREAD_SECTIONS are not compared (a row's numbers come
    from the train, hls and emulate stages)."""
    defaults = default_config()
    changes = []
    for section in sorted((set(current) | set(measured)) - set(UNREAD_SECTIONS)):
        now, then = current.get(section, {}), measured.get(section, {})
        for key in sorted(set(now) | set(then)):
            old = then.get(key, defaults.get(section, {}).get(key))
            new = now.get(key, defaults.get(section, {}).get(key))
            if old != new:
                changes.append(f"{section}.{key}: {old!r} -> {new!r}")
    return changes


def merge(fresh: list[dict], ledger: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows for every run of the bundled recipes: the fresh run if there is one, else the ledger row when
    its recipe still lists the seed and has the configuration it was measured with. Returns (rows sorted
    by recipe and seed, each with its recipe's current ``baseline``; the reasons for each dropped row)."""
    names = {p.stem for p in MODELS_DIR.glob("*.toml")}
    by_run = {(r["recipe"], r["seed"]): r for r in fresh}
    dropped = []
    for r in ledger:
        name, seed = r.get("recipe"), r.get("seed")
        if (name, seed) in by_run:
            continue
        if name not in names or name in SKIP:
            dropped.append(f"{name} seed {seed}: no such recipe in {MODELS_DIR} any more" if name not in names
                           else f"{name} seed {seed}: {name} is not reported here (make demo reports it)")
            continue
        if not isinstance(r.get("config"), dict):
            dropped.append(f"{name} seed {seed}: the row records no configuration it was measured with")
            continue
        recipe = load_recipe(MODELS_DIR / f"{name}.toml")
        if seed not in recipe.seeds:
            dropped.append(f"{name} seed {seed}: models/{name}.toml no longer lists seed {seed}")
            continue
        changes = config_changes(r["config"], recipe.config())
        if changes:
            dropped.append(f"{name} seed {seed}: models/{name}.toml changed since it was measured "
                           f"({'; '.join(changes)}); retrain it")
            continue
        # its configuration is the current one (a key added to the schema since reads as its default): restate it
        by_run[(name, seed)] = {**restate_speedup(r), "baseline": recipe.baseline or None, "config": recipe.config()}
    return [by_run[k] for k in sorted(by_run)], dropped


def load_ledger(path: Path) -> list[dict]:
    """The rows of a ledger file (`write_ledger`), each with its ``config``; a clear error if it is not one."""
    try:
        data = json.loads(Path(path).read_text())
        rows, configs = data["rows"], data.get("configs", {})
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "recipe" in r and "seed" in r for r in rows):
            raise TypeError
        rows = [{**r, "config": r.get("config", configs.get(r["recipe"]))} for r in rows]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a results ledger (expected JSON {{\"configs\": {{recipe: config}}, \"rows\": "
                         f"[{{\"recipe\": ..., \"seed\": ...}}, ...]}}); fix it, or rerun with --only-out to rebuild "
                         f"it from out/ alone") from err
    return rows


def write_ledger(path: Path, rows: list[dict]) -> None:
    """The ledger as JSON: ``configs`` (recipe -> the normalised configuration its rows were measured
    with: after `merge` every row of a recipe has its current one) and ``rows`` (one line per run,
    sorted by recipe and seed), atomically."""
    rows = sorted(rows, key=lambda r: (r["recipe"], r["seed"]))
    configs: dict[str, dict] = {}
    for r in rows:
        if configs.setdefault(r["recipe"], r["config"]) != r["config"]:
            raise ValueError(f"ledger rows of {r['recipe']} carry two configurations (merge them first)")
    lines = [json.dumps({k: v for k, v in r.items() if k != "config"}, sort_keys=True) for r in rows]
    text = ('{"configs": ' + json.dumps(configs, indent=1, sort_keys=True) + ',\n "rows": [\n  '
            + ",\n  ".join(lines) + "\n ]\n}\n")
    atomic_write_text(path, text)


def _lr_text(t: dict) -> str:
    """A recipe's learning-rate schedule in words: "constant", "cosine" or "step x0.1 from epoch 21"."""
    if t["lr_schedule"] == "step":
        return f"step x{t['lr_drop_factor']:g} from epoch {t['lr_drop_epoch'] + 1}"
    return t["lr_schedule"]


def _lr(r: dict) -> str:
    """A row's learning-rate schedule (rows measured before ``train.lr_schedule`` existed: constant)."""
    return r.get("lr_schedule") or "constant"


def _shift(r: dict) -> int:
    """A row's ``train.augment_shift`` (rows measured before it existed: 0, no augmentation)."""
    return int(r.get("augment_shift") or 0)


def _baseline(rows, row):
    """The row a run is compared with: the run of its recipe's ``baseline`` recipe at the same seed (None
    when that run is not measured); a recipe that names no baseline: itself when it is dense (no
    pruning: it is a baseline), else None."""
    if not row.get("baseline"):
        return row if row["prune"] == "none" else None
    for r in rows:
        if r["recipe"] == row["baseline"] and r["seed"] == row["seed"]:
            return r
    return None


def table(rows: list[dict]) -> str:
    lines = ["| recipe | units | epochs | seed | pruning | target | state sparsity | float | fixed point "
             "| vs baseline (same seed) | speedup (ideal) | energy ratio | train wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = _baseline(rows, r)
        if base is None or base is r:
            delta = "baseline" if base is r else "n/a"
        elif r["metric"] == "accuracy":
            delta = f"{100 * (r['float'] - base['float']):+.1f} pts"
        else:
            delta = f"{100 * (r['float'] / base['float'] - 1):+.1f}% BPC"
        prune = _pruning(r)
        tgt = "-" if r["target"] is None else f"{r['target']:.2f}"
        lines.append(
            f"| `{r['recipe']}` | {r['units']} | {r['epochs']} | {r['seed']} | {prune} | {tgt} | {r['sparsity']:.1%} | {r['metric']} {r['float']:.4f} "
            f"| {r['fixed']:.4f} | {delta} | {r['speedup']:.2f}x{'*' if r.get('speedup_basis') == 'mean columns' else ''} ({r['ideal']:.2f}x) | {r['energy']:.2f}x "
            f"| {r['wall_s']:.0f} s |")
    if any(r.get("speedup_basis") == "mean columns" for r in rows):
        lines += ["", "Speedups are modelled cycles (pipeline/accelerator.py, equal to the cycles counted in C-simulation). "
                  "\\* restated under the current cycle model from the run's mean columns per step (its per-step "
                  "counts were not kept; `results.restate_speedup`); unmarked rows were emulated under it."]
    return "\n".join(lines)


QUANT_TARGETS = {"accuracy": -0.3, "bpc": 1.0}  # issue 30: 8-bit within 0.3 points / 1% BPC of the float model
QUANT_LOW_BIT_FACTOR = {"accuracy": 1 / 0.3, "bpc": 3.0}  # below 8 bits, the aim: within 1 point / 3% BPC


def _widths(q: dict) -> tuple[int, int]:
    """(W_x, W_h) widths of a quantised row (16: the default type)."""
    from pipeline.fixed import FixedType

    w = FixedType.parse(q["weight"]).width if q.get("weight") else 16
    wr = FixedType.parse(q["recurrent_weight"]).width if q.get("recurrent_weight") else w
    return w, wr


def _train_sections(config: dict) -> dict:
    from pipeline.records import TRAIN_SECTIONS

    return {k: config.get(k) for k in TRAIN_SECTIONS if k != "quant"}


def float_twin(rows: list[dict], row: dict) -> dict | None:
    """The float run a quantised row is paired with, at the same seed: the run it was fine-tuned from
    (``train.init_from``, a float warm-up), else the run of a recipe whose training sections
    (`pipeline.records.TRAIN_SECTIONS` but ``[quant]``) are the row's, trained without quantisation."""
    start = (row["config"].get("train") or {}).get("init_from") or ""
    if start and not start.endswith(".keras"):  # fine-tuned (a float warm-up): the run it started from
        return next((r for r in rows if r["recipe"] == start and r["seed"] == row["seed"]), None)
    want = _train_sections(row["config"])
    for r in rows:
        if (r is not row and r["seed"] == row["seed"] and not (r.get("config", {}).get("quant") or {}).get("enabled")
                and _train_sections(r.get("config", {})) == want):
            return r
    return None


WEIGHT_KEYS = ("weight_target", "weight_initial", "weight_begin_epoch", "weight_end_epoch", "weight_frequency",
               "weight_lanes")
WEIGHT_TARGETS = {"accuracy": -0.3, "bpc": 1.0}  # issue 31: the weight pruning's cost beyond the state-only run


def state_only_twin(rows: list[dict], row: dict) -> dict | None:
    """The state-only run a weight-pruned row is paired with, at the same seed: the run whose training
    sections (`pipeline.records.TRAIN_SECTIONS`) equal the row's but for ``sparsity.weight_*`` (the same
    training without weight pruning), else the run it was fine-tuned from (``train.init_from``)."""
    def strip(config: dict) -> dict:
        sections = {k: config.get(k) for k in ("data", "model", "train", "sparsity", "quant")}
        sections["sparsity"] = {k: v for k, v in (sections["sparsity"] or {}).items() if k not in WEIGHT_KEYS}
        return sections

    want = strip(row["config"])
    for r in rows:
        if (r is not row and r["seed"] == row["seed"] and not r.get("weight_target")
                and strip(r.get("config", {})) == want):
            return r
    start = (row["config"].get("train") or {}).get("init_from") or ""
    if start and not start.endswith(".keras"):
        return next((r for r in rows if r["recipe"] == start and r["seed"] == row["seed"]), None)
    return None


def weight_table(rows: list[dict]) -> str:
    """Weight-pruned runs (issue 31) against their state-only run of the same seed (`state_only_twin`): weight
    and state sparsity, the fixed-point metric and its paired gap (points, or % BPC), the modelled cycles of
    the weight-sparse engine against dense (and the ideal: nonzero weights of nonzero columns only), KE and
    the weight memory (values + rows) against dense. Then mean +- sd per recipe against the target."""
    import numpy as np

    w_rows = [r for r in rows if r.get("weight_target")]
    lines = ["| recipe | seed | weight / state sparsity | fixed point (float) | state-only run, same seed: fixed point "
             "(float) | gap | speedup vs dense, modelled (ideal) | KE | weight memory vs dense |",
             "|---|---|---|---|---|---|---|---|---|"]
    fams: dict[str, list[float]] = {}
    for r in w_rows:
        twin = state_only_twin(rows, r)
        if twin is None:
            gap, ref = "n/a (no state-only run)", "n/a"
        else:
            d = paired_gap(r["metric"], r["fixed"], twin["fixed"])
            fams.setdefault(r["recipe"], []).append(d)
            gap = f"{d:+.2f} {'pts' if r['metric'] == 'accuracy' else '% BPC'}"
            ref = f"`{twin['recipe']}` {twin['fixed']:.4f} ({twin['float']:.4f}), {twin['speedup']:.2f}x"
        ws = r.get("weight_sparsity")
        speed = (f"{r['speedup_weight']:.2f}x ({r['ideal_weight']:.2f}x)" if r.get("speedup_weight")
                 else "n/a (dense weights in the project)")
        mem = f"{r['weight_memory_ratio']:.2f}x" if r.get("weight_memory_ratio") else "n/a"
        lines.append(f"| `{r['recipe']}` | {r['seed']} | {'n/a' if ws is None else f'{ws:.1%}'} / {r['sparsity']:.1%} "
                     f"| {r['metric']} {r['fixed']:.4f} ({r['float']:.4f}) | {ref} | {gap} | {speed} "
                     f"| {r.get('weight_chunks') or 'n/a'} | {mem} |")
    lines += ["", "| recipe | seeds | gap to the state-only run, same seed: mean +- sd | issue-31 target |",
              "|---|---|---|---|"]
    for fam, ds in fams.items():
        metric = next(r["metric"] for r in w_rows if r["recipe"] == fam)
        d = np.array(ds)
        unit, sd = _mean_sd_parts(d, metric)
        target = WEIGHT_TARGETS[metric]
        met = d.mean() >= target if metric == "accuracy" else d.mean() <= target
        lines.append(f"| `{fam}` | {len(d)} | {d.mean():+.2f}{sd}{unit} | {'within' if met else 'outside'} "
                     f"{abs(target):g}{unit} |")
    lines += ["", "Gap: accuracy points (m_w - m_state), or BPC in percent (m_w / m_state - 1: below 0 is better), "
              "fixed point against fixed point (what each accelerator computes). The state-only run is the same "
              "training without weight pruning where one was run (a fine-tuning control), else the run it was "
              "fine-tuned from."]
    return "\n".join(lines)


def paired_gap(metric: str, value: float, ref: float) -> float:
    """The paired difference of a run to its reference run of the same seed: ``100 * (m - m_ref)`` points
    (accuracy) or ``100 * (m / m_ref - 1)`` percent (BPC)."""
    return 100.0 * (value - ref) if metric == "accuracy" else 100.0 * (value / ref - 1)


def _mean_sd_parts(d, metric: str) -> tuple[str, str]:
    """The unit of a family's paired gaps and their sample sd text (`` +- 0.81``; none for one seed)."""
    return (" pts" if metric == "accuracy" else "% BPC"), (f" +- {d.std(ddof=1):.2f}" if len(d) > 1 else "")


def _bits_text(mem: dict | None) -> str:
    if not mem:
        return "n/a"
    return f"{mem['bits'] / 1e6:.2f} Mbit ({mem['bits'] / (16 * mem['count']):.0%} of 16-bit)"


def quant_table(rows: list[dict]) -> str:
    """Quantisation-aware runs against the float run of the same seed (`float_twin`): weight and state
    types, weight memory (bits of every stored weight, from the generated project), state sparsity, the
    fixed-point metric (what the accelerator computes; Keras computes the same, bit for bit, when the
    largest difference to Keras is 0) and the paired gap to the float-trained run deployed at its 16-bit
    types (its fixed-point metric): ``m_q - m_16`` (points) or ``m_q / m_16 - 1`` (% BPC), its float metric
    beside it. Then mean +- sd per recipe."""
    import numpy as np

    q_rows = [r for r in rows if r.get("quant")]
    lines = ["| recipe | seed | weights / state | weight memory | state sparsity | fixed point (= Keras) "
             "| max abs Keras - fixed | float-trained run, same seed: 16-bit fixed point (float) | gap |",
             "|---|---|---|---|---|---|---|---|---|"]
    fams: dict[str, list[float]] = {}
    for r in q_rows:
        q = r["quant"]
        twin = float_twin(rows, r)
        types = f"{q['weight'] or 'default'}" + (f", W_h {q['recurrent_weight']}" if q.get("recurrent_weight") else "")
        types += f" / {q['state'] or 'default'}"
        if twin is None:
            gap, ref = "n/a (no float run)", "n/a"
        else:
            d = paired_gap(r["metric"], r["fixed"], twin["fixed"])
            fams.setdefault(r["recipe"], []).append(d)
            gap = f"{d:+.2f} {'pts' if r['metric'] == 'accuracy' else '% BPC'}"
            ref = f"`{twin['recipe']}` {twin['fixed']:.4f} ({twin['float']:.4f})"
        err = r.get("max_abs_err_vs_keras")
        lines.append(f"| `{r['recipe']}` | {r['seed']} | {types} | {_bits_text(r.get('weight_memory'))} "
                     f"| {r['sparsity']:.1%} | {r['metric']} {r['fixed']:.4f} | {'n/a' if err is None else f'{err:g}'} "
                     f"| {ref} | {gap} |")
    lines += ["", "| recipe | seeds | gap to the float-trained run at 16 bits, same seed: mean +- sd | issue-30 target |",
              "|---|---|---|---|"]
    for fam, ds in fams.items():
        metric = next(r["metric"] for r in q_rows if r["recipe"] == fam)
        d = np.array(ds)
        unit, sd = _mean_sd_parts(d, metric)
        weights = max(_widths(next(r["quant"] for r in q_rows if r["recipe"] == fam)))
        target = QUANT_TARGETS[metric] * (1 if weights >= 8 else QUANT_LOW_BIT_FACTOR[metric])
        met = d.mean() >= target if metric == "accuracy" else d.mean() <= abs(target)
        aim = "" if weights >= 8 else " (the aim below 8 bits)"
        lines.append(f"| `{fam}` | {len(d)} | {d.mean():+.2f}{sd}{unit} | "
                     f"{'within' if met else 'outside'} {abs(target):g}{unit}{aim} |")
    lines += ["", "Gap: accuracy points (m_q - m_16), or BPC in percent (m_q / m_16 - 1: below 0 is better). A "
              "fine-tuned recipe (train.init_from, the float warm-up) trained that many more epochs than its "
              "reference."]
    return "\n".join(lines)


def _pruning(r: dict) -> str:
    """How a row was pruned, in words (gate L1 start epoch and distillation included)."""
    text = r["prune"] if r["prune"] != "output_gate" else f"output gate, L1 {r['gate_l1']:g}"
    if r["prune"] == "state" and r["gate_l1"]:
        text += f", L1 {r['gate_l1']:g} on o_t"
    if r["prune"] != "none" and r["gate_l1"] and r.get("l1_begin_epoch"):
        text += f" from epoch {r['l1_begin_epoch'] + 1}"
    if r.get("teacher"):
        text += ", distilled"
    if r.get("init_from"):
        text += f", fine-tuned from `{r['init_from']}`"
    if _lr(r) != "constant":
        text += f", {_lr(r)} LR"
    if r["prune"] != "none" and not r.get("prune_last", True):
        text += ", h_T unpruned"
    if _shift(r):
        text += f", train images shifted <= {_shift(r)} px"
    if r.get("quant"):
        text += f", {_quant_text(r['quant'])}"
    if r.get("weight_target"):
        text += f", weights column-balanced to {r['weight_target']:.0%}"
    if r.get("fold_embedding"):
        text += "; accelerator: folded embedding"
    return text


def _quant_text(q: dict) -> str:
    """A quantised row's weight and state widths in words, e.g. "quantisation-aware 4/8-bit weights (W_x/W_h),
    8-bit state"."""
    from pipeline.fixed import FixedType

    def width(text, default=16):
        return FixedType.parse(text).width if text else default

    w, wr = width(q.get("weight")), width(q.get("recurrent_weight") or q.get("weight"))
    ws = f"{w}-bit" if w == wr else f"{w}/{wr}-bit"
    return f"quantisation-aware {ws} weights, {width(q.get('state'))}-bit state"


def _seed_families(rows: list[dict]) -> dict[str, tuple[list[dict], list[float]]]:
    """Recipes with >= 2 measured seeds: ``recipe -> (rows by seed, paired differences)``, where the
    difference to the baseline run of the same seed is ``100 * (m_s - m_base,s)`` points (accuracy) or
    ``100 * (m_s / m_base,s - 1)`` percent (BPC); dense recipes have no differences."""
    fams: dict[str, list[dict]] = {}
    for r in rows:
        fams.setdefault(r["recipe"], []).append(r)
    out = {}
    for fam, rs in fams.items():
        if len(rs) < 2:
            continue
        rs = sorted(rs, key=lambda r: r["seed"])
        deltas = []
        for r in rs:
            base = _baseline(rows, r)
            if base is not None and base is not r:
                deltas.append(paired_gap(rs[0]["metric"], r["float"], base["float"]))
        out[fam] = (rs, deltas)
    return out


def _cross_machine(rows: list[dict], family: list[dict]) -> list[str]:
    """The CPU models of a family's runs and their dense baselines, when a pair was trained on two
    different recorded ones (training is bit-reproducible on one CPU model only); else ``[]``."""
    machines = set()
    mixed = False
    for r in family:
        base = _baseline(rows, r)
        pair = {m for m in (r.get("machine"), base and base.get("machine")) if m}
        machines |= pair
        mixed |= len(pair) > 1
    return sorted(machines) if mixed else []


def seed_table(rows: list[dict]) -> str:
    """Mean and sample standard deviation over the seeds of each recipe with >= 2 measured seeds, and the
    paired difference to its baseline run of the same seed: ``delta_s = m_s - m_base,s``."""
    import numpy as np

    lines = ["| recipe | pruning | seeds | state sparsity (mean) | float metric, mean +- sd "
             "| vs baseline, same seed: mean +- sd (per seed) |", "|---|---|---|---|---|---|"]
    for fam, (rs, deltas) in _seed_families(rows).items():
        vals = np.array([r["float"] for r in rs])
        unit = " pts" if rs[0]["metric"] == "accuracy" else "% BPC"
        if deltas:
            d = np.array(deltas)
            sd = f" +- {d.std(ddof=1):.1f}" if len(d) > 1 else ""
            vs = f"{d.mean():+.1f}{sd}{unit} ({', '.join(f'{x:+.1f}' for x in d)})"
            mixed = _cross_machine(rows, rs)
            if mixed:
                vs += f"; pairs across CPU models: {', '.join(mixed)}"
        else:
            vs = "baseline"
        how = _pruning(rs[0]) + (" (same seed)" if rs[0].get("init_from") else "")
        lines.append(f"| `{fam}` | {how} | {', '.join(str(r['seed']) for r in rs)} "
                     f"| {np.mean([r['sparsity'] for r in rs]):.1%} | {rs[0]['metric']} {vals.mean():.4f} +- "
                     f"{vals.std(ddof=1):.4f} | {vs} |")
    return "\n".join(lines)


def _variant(r: dict) -> str:
    """The training variant of a row, for the plot legend."""
    parts = []
    if r.get("teacher"):
        parts.append("distilled")
    elif r.get("init_from"):
        parts.append("fine-tuned from dense")
    elif r["gate_l1"] and r.get("l1_begin_epoch"):
        parts.append("L1 from a later epoch")
    elif r["prune"] == "state" and r["gate_l1"]:
        parts.append("L1 on o_t")
    if _lr(r) != "constant":
        parts.append(f"{_lr(r)} LR")
    if not r.get("prune_last", True):
        parts.append("h_T unpruned")
    if _shift(r):
        parts.append(f"shifted <= {_shift(r)} px")
    if r.get("quant"):
        parts.append(_quant_text(r["quant"]))
    if r.get("weight_target"):
        parts.append(f"weights {r['weight_target']:.0%} pruned")
    return ", ".join(parts)


TARGETS = {"accuracy": -0.5, "bpc": 2.0}  # the issue's targets: within 0.5 points / 2% of dense


def gap_plot(rows: list[dict], task: str, path: Path) -> list[str]:
    """Paired differences to the baseline run of the same seed, one line per pruned recipe with >= 2 seeds:
    every seed as a dot, the mean with a 95% interval of the mean (``t_{0.975, n-1} * sd / sqrt(n)``),
    and the issue's target as a dashed line. Returns the families in plot order ([] and no file when
    the task has none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from scipy import stats

    fams = [(fam, rs, d) for fam, (rs, d) in _seed_families(rows).items() if len(d) >= 2 and rs[0]["task"] == task]
    if not fams:
        return []
    fams.sort(key=lambda f: np.mean(f[2]))
    metric = fams[0][1][0]["metric"]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(fams) + 1.6))
    for k, (_, _, d) in enumerate(fams):
        d = np.asarray(d)
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        ax.scatter(d, np.full(len(d), k), s=10, color="gray", alpha=0.6, zorder=2)
        ax.errorbar(d.mean(), k, xerr=half, fmt="o", color="C0", capsize=3, zorder=3)
    ax.axvline(TARGETS[metric], ls="--", color="C3", lw=1, label=f"target ({TARGETS[metric]:+g})")
    ax.axvline(0.0, ls=":", color="k", lw=0.8)
    ax.set_yticks(range(len(fams)), [f"{fam} ({len(d)} seeds)" for fam, _, d in fams], fontsize=7)
    ax.set_xlabel("vs baseline run of the same seed: " + ("accuracy points" if metric == "accuracy" else "% BPC"))
    ax.set_title(f"{task}: paired gap per recipe (dots: seeds; bar: mean, 95% interval)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right" if metric == "accuracy" else "upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [fam for fam, _, _ in fams]


def plot(rows: list[dict], task: str, path: Path) -> list[str]:
    """Scatter of state sparsity vs metric per (pruning, width, variant), dense runs as lines; returns
    the legend labels ([] and no file when the task has no rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in rows if r["task"] == task]
    if not sel:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    budgets = len({r["epochs"] for r in sel if r["prune"] != "none"}) > 1  # name the epochs when they differ
    groups: dict[tuple, list[dict]] = {}
    for r in sel:
        if r["prune"] != "none":
            groups.setdefault((r["prune"], r["units"], r["epochs"] if budgets else 0, _variant(r)), []).append(r)
    markers = "osD^v<>pPX*h"
    for k, ((prune, units, epochs, variant), pts) in enumerate(sorted(groups.items())):
        label = (f"{prune.replace('_', ' ')}, H={units}" + (f", {epochs} epochs" if budgets else "")
                 + (f", {variant}" if variant else ""))
        ax.scatter([100 * r["sparsity"] for r in pts], [r["float"] for r in pts], marker=markers[k % len(markers)],
                   label=label, alpha=0.8)
    dense = sorted((r for r in sel if r["prune"] == "none"), key=lambda r: r["float"])
    span = (max(r["float"] for r in sel) - min(r["float"] for r in sel)) or 1.0
    last = None
    for r in dense:
        ax.axhline(r["float"], ls="--", lw=0.8, color="gray")
        if r["seed"] == min(x["seed"] for x in dense if x["recipe"] == r["recipe"]) and (last is None or r["float"] - last > 0.03 * span):  # no overlapping labels
            start = (", fine-tuned" if r.get("init_from") else "") + (
                f", {_lr(r)} LR" if _lr(r) != "constant" else "")
            ax.annotate(f"dense H={r['units']}, {r['epochs']} epochs{start}", (0.99, r["float"]),
                        xycoords=ax.get_yaxis_transform(), fontsize=6, color="gray", va="bottom", ha="right")
            last = r["float"]
    ax.axvline(90, ls=":", color="k", lw=0.8)
    ax.set_xlabel("state sparsity (%)")
    ax.set_ylabel(sel[0]["metric"] + " (test, float)")
    ax.set_title(f"{task}: state sparsity vs {sel[0]['metric']}")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [t.get_text() for t in ax.get_legend().get_texts()]


def main(out="out", docs="docs", only_out: bool = False, root="hls_project") -> list[dict]:
    fresh, notes = collect(out, root)
    for note in notes:
        stage(f"results: not read: {note}")
    ledger_path = Path(docs) / LEDGER
    rows, dropped = merge(fresh, [] if only_out else load_ledger(ledger_path))
    for why in dropped:
        stage(f"results: dropping the ledger row of {why}")
    atomic_write_text(Path(docs) / "results_table.md", table(rows) + "\n")
    atomic_write_text(Path(docs) / "results_seeds.md", seed_table(rows) + "\n")
    atomic_write_text(Path(docs) / "results_quant.md", quant_table(rows) + "\n")
    atomic_write_text(Path(docs) / "results_weight.md", weight_table(rows) + "\n")
    for task in sorted({r["task"] for r in rows}):
        plot(rows, task, Path(docs) / f"results_{task}.png")
        gap_plot(rows, task, Path(docs) / f"results_{task}_gaps.png")
    write_ledger(ledger_path, rows)
    stage(f"results: {len(rows)} runs ({len(fresh)} from {out}/, {len(rows) - len(fresh)} from the ledger) "
          f"-> {docs}/results_table.md, {docs}/results_seeds.md and plots")
    return rows
