"""The pipeline's stages, each callable from Python and from the CLI (`pipeline.cli`):

    train -> hls -> csim -> emulate -> rtl -> report        (demo = all of them)

A run is one recipe at one of its seeds (``seeds = [...]`` in the recipe; default: its first seed).
Artifacts: ``<out>/<recipe>/seed<N>/`` holds model.keras, train_metrics.json, csim.json, emulate.json,
rtl.json, report.md and plots; the generated project is ``<root>/<recipe>/seed<N>/`` (root
``hls_project``). Stages are incremental through one helper (`stage_record`): each record stores the
key of what it consumed (its inputs, the model and a digest of the code that computes it) and the stage
is skipped when that key is unchanged. `record_status` tells whether a stage's record is up to date,
missing or stale without running anything (what ``make results`` and ``make bench`` read).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from pipeline import accelerator
from pipeline.recipes import Recipe, load_recipe, run_dir
from pipeline.recipes import run_label as _label
from pipeline.util import atomic_write_text, check_output_dir, stage

HLS_ROOT = Path("hls_project")


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _section_hash(recipe: Recipe, section: str) -> str:
    """sha256 of one section of the validated recipe, defaults filled in (comments and key order do not
    count, a changed value does)."""
    return hashlib.sha256(json.dumps(recipe.config()[section], sort_keys=True).encode()).hexdigest()


# The code each stage's record depends on (besides its inputs): part of the stage's up-to-date key, so
# that a record written by older code is recomputed, not reused (e.g. cycles of an older cycle model).
_NUMERICS = ("accelerator.py", "emulator.py", "fixed.py", "ir.py", "precision.py", "data.py")
_GENERATOR = ("hls/layer.py", "hls/project.py", "hls/fold.py", "hls/synth_check.py", "hls/checks.py", "templating.py")
_STAGE_CODE = {
    "hls": _NUMERICS + _GENERATOR,
    "csim": _NUMERICS + _GENERATOR + ("csim.py", "verify.py"),
    "emulate": _NUMERICS + _GENERATOR + ("sparsity.py", "metrics.py"),
    "rtl": _NUMERICS + _GENERATOR + ("rtl/__init__.py", "rtl/spec.py", "rtl/generate.py", "rtl/sim.py", "rtl/synth.py"),
}


def _code_digest(stage_name: str) -> str:
    """Content hash of the modules (and, for hls and rtl, the templates) that compute a stage's record."""
    from pipeline.templating import template_dir
    from pipeline.util import sha256_files

    here = Path(__file__).resolve().parent
    files = [here / f for f in _STAGE_CODE[stage_name]]
    templates = Path(str(template_dir()))
    if stage_name in ("hls", "csim"):
        files += sorted(p for p in templates.glob("*") if p.suffix in (".j2", ".h", ".cpp"))
    if stage_name == "rtl":
        files += sorted((templates / "rtl").glob("*"))
    return sha256_files([f for f in files if f.is_file()])


def project_dir(recipe: Recipe, root=HLS_ROOT) -> Path:
    """``<root>/<recipe>/seed<N>/``: the generated HLS project of one run."""
    return Path(root) / recipe.name / f"seed{recipe.seed}"


def _hint(recipe: Recipe, target: str) -> str:
    """The make command that runs one stage of this run, e.g. ``make train MODEL=x SEED=3``."""
    seed = "" if recipe.seed == recipe.seeds[0] else f" SEED={recipe.seed}"
    return f"make {target} MODEL={recipe.name}{seed}"


def _load_model(recipe: Recipe, out):
    import keras

    import pipeline.layers  # noqa: F401 - registers SparseStateLSTM for loading

    path = run_dir(recipe, out) / "model.keras"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the train stage first ({_hint(recipe, 'train')})")
    import zipfile

    if not zipfile.is_zipfile(path):
        raise ValueError(f"cannot load {path}: not a .keras file (not a zip archive: empty, truncated or "
                         f"corrupted); retrain it (python -m pipeline.cli train --model {recipe.name} --seed {recipe.seed} --force)")
    try:
        return keras.models.load_model(path, compile=False)  # inference only: no optimizer or metrics
    except Exception as err:  # corrupted or foreign file
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"cannot load {path}: {type(err).__name__}: {first} (not a model saved by the train "
                         f"stage? retrain it: python -m pipeline.cli train --model {recipe.name} --seed {recipe.seed} "
                         "--force)") from None


def _up_to_date(record: Path, key: dict) -> bool:
    if not record.is_file():
        return False
    try:
        return json.loads(record.read_text()).get("inputs") == key
    except json.JSONDecodeError:
        return False


STAGES = ("train", "hls", "csim", "emulate", "rtl")


def record_path(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT) -> Path:
    """Where a stage keeps its record (the JSON whose ``inputs`` is the stage's key)."""
    if stage_name == "hls":
        return project_dir(recipe, root) / "skiplstm_inputs.json"
    name = {"train": ".train_inputs.json", "csim": "csim.json", "emulate": "emulate.json", "rtl": "rtl.json"}
    if stage_name not in name:
        raise ValueError(f"unknown stage {stage_name!r}; expected one of {STAGES}")
    return run_dir(recipe, out) / name[stage_name]


def stage_key(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, **options) -> dict:
    """The key a stage's record must carry to be up to date: everything the stage consumes.

    - train: the normalised recipe (`Recipe.config`, so a comment does not count), the seed, the
      ``epochs``/``limit`` overrides, and the sha256 of the teacher's and the starting model (a
      distilled or fine-tuned run retrains when they change). Not the training code: retraining
      hours of runs on every edit of train.py is not wanted; the results ledger keys runs by config.
    - hls, csim, emulate, rtl: the sha256 of the trained model, the recipe's ``[hls]`` and ``[data]``
      sections (the test vectors and split come from the data), the digest of the code that computes
      the record (`_code_digest`); csim also the generated project's sources; csim, emulate and rtl the
      saved IR of the project (what they read); emulate the data split.
    """
    d = run_dir(recipe, out)
    if stage_name == "train":
        from pipeline.train import init_model_path, teacher_model_path

        key = {"config": recipe.config(), "seed": recipe.seed, "epochs": options.get("epochs"),
               "limit": options.get("limit")}
        for name, path in (("teacher", teacher_model_path(recipe, out)), ("init_from", init_model_path(recipe, out))):
            if path is not None:
                key[name] = _sha(path)
        return key
    model = d / "model.keras"
    key = {"model": _sha(model) if model.is_file() else None, "hls": _section_hash(recipe, "hls"),
           "data": _section_hash(recipe, "data"), "code": _code_digest(stage_name)}
    if stage_name == "csim":
        from pipeline import csim

        project = project_dir(recipe, root)
        key["project"] = csim.source_digest(project) if project.is_dir() else None
    if stage_name in ("csim", "emulate", "rtl"):  # what they read: the IR the hls stage saved
        from pipeline import ir

        project = project_dir(recipe, root)
        key["ir"] = ir.digest(project) if (project / "skiplstm_ir.json").is_file() else None
    if stage_name == "emulate":
        key["split"] = options.get("split", "test")
    return key


def record_status(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, **options) -> str:
    """``"up to date"``, ``"missing"`` (no record) or ``"stale"`` (a record of other inputs or code),
    without running anything."""
    record = record_path(stage_name, recipe, out, root)
    if not record.is_file():
        return "missing"
    try:
        key = stage_key(stage_name, recipe, out, root, **options)
    except FileNotFoundError:  # e.g. the teacher model is gone
        return "stale"
    return "up to date" if _up_to_date(record, key) else "stale"


def stage_record(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, force: bool = False,
                 outputs: tuple[Path, ...] = (), **options) -> tuple[Path, dict, bool]:
    """The one cached-stage check every stage makes: ``(record path, key, up to date)``, up to date when
    not forced, the record carries the current key and every path in ``outputs`` exists; prints the
    stage's "up to date" line when it is."""
    record = record_path(stage_name, recipe, out, root)
    key = stage_key(stage_name, recipe, out, root, **options)
    fresh = not force and all(Path(o).exists() for o in outputs) and _up_to_date(record, key)
    if fresh:
        stage(f"{stage_name}: {_label(recipe)}: up to date ({record.parent if stage_name in ('train', 'hls') else record})")
    return record, key, fresh


def run_train(recipe_name: str, out="out", seed: int | None = None, force: bool = False,
              epochs: int | None = None, limit: int | None = None) -> dict:
    """Train one run (the recipe at ``seed``, default its first seed) into ``<out>/<recipe>/seed<N>/``."""
    recipe = load_recipe(recipe_name, seed=seed)
    d = run_dir(recipe, out)
    metrics = d / "train_metrics.json"
    stamp, key, fresh = stage_record("train", recipe, out, force=force, outputs=(d / "model.keras", metrics),
                                     epochs=epochs, limit=limit)
    if fresh:
        return json.loads(metrics.read_text())
    created = d  # the outermost folder this call creates: removed again if training fails
    while not created.parent.exists() and created.parent != created.parent.parent:
        created = created.parent
    created = None if created.exists() else created
    check_output_dir(d)  # before minutes of training, not after
    stage(f"train: {_label(recipe)}: training ({recipe.train.epochs if epochs is None else epochs} epochs)")
    from pipeline.train import train

    try:
        result = train(recipe, out=out, epochs=epochs, limit=limit)
    except BaseException:  # a failed stage leaves nothing behind (a folder that existed before stays)
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise
    atomic_write_text(stamp, json.dumps({"inputs": key}))
    return result


def run_sweep(recipe_name: str, out="out", seeds: list[int] | None = None, jobs: int = 1, force: bool = False,
              epochs: int | None = None, limit: int | None = None) -> list[dict]:
    """Train several seeds of one recipe (``seeds``; None: every seed the recipe lists), ``jobs`` at a
    time. Each run is the same deterministic run as ``run_train`` alone: with ``jobs`` > 1 each one is
    its own process (``python -m pipeline.cli train --seed N``), its console output in
    ``<out>/<recipe>/seed<N>.train.log``. Returns the runs' train metrics in seed order; a failed run is
    an error naming its seed and log after the others have finished."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    recipe = load_recipe(recipe_name)
    seeds = list(recipe.seeds) if seeds is None else list(seeds)
    unknown = [s for s in seeds if s not in recipe.seeds]
    if not seeds or unknown:
        raise ValueError(f"recipe {recipe.name}: seeds {unknown or seeds} are not among its seeds {list(recipe.seeds)}; "
                         f"add them to seeds = [...] in {recipe.path}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got jobs={jobs!r}")
    if jobs == 1 or len(seeds) == 1:
        return [run_train(recipe_name, out, seed=s, force=force, epochs=epochs, limit=limit) for s in seeds]
    base = Path(out) / recipe.name
    check_output_dir(base)  # made here, so that a failed run removes only its own seed folder
    stage(f"train: {recipe.name}: seeds {seeds}, {jobs} at a time (output of each in {base}/seed<N>.train.log)")

    def one(seed: int) -> int:
        cmd = [sys.executable, "-m", "pipeline.cli", "train", "--model", str(recipe_name), "--out", str(out),
               "--seed", str(seed)] + (["--force"] if force else []) + (
               ["--epochs", str(epochs)] if epochs else []) + (["--limit", str(limit)] if limit else [])
        with open(base / f"seed{seed}.train.log", "w") as log:
            code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        stage(f"train: {recipe.name} seed {seed}: " + ("done" if code == 0 else f"FAILED (exit {code})"))
        return code

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        codes = dict(zip(seeds, pool.map(one, seeds), strict=True))
    failed = [s for s, c in codes.items() if c]
    if failed:
        raise RuntimeError(f"train: {recipe.name}: seeds {failed} failed; see "
                           + ", ".join(str(base / f"seed{s}.train.log") for s in failed))
    return [json.loads((run_dir(load_recipe(recipe_name, seed=s), out) / "train_metrics.json").read_text())
            for s in seeds]


def run_hls(recipe_name: str, out="out", root=HLS_ROOT, seed: int | None = None, force: bool = False) -> Path:
    recipe = load_recipe(recipe_name, seed=seed)
    project = project_dir(recipe, root)
    stamp, key, fresh = stage_record("hls", recipe, out, root, force)
    if fresh:
        return project
    from pipeline.emulator import Emulator
    from pipeline.hls.project import generate, read_tb_inputs, write_tb_outputs

    model = _load_model(recipe, out)
    t0 = time.time()
    tb = _test_split(recipe).test.x[: int(recipe.hls.test_vectors)]
    path = generate(model, recipe.hls.model_dump(), project.parent, name=recipe.name, folder=project, tb_inputs=tb,
                    densities=_measured_densities(recipe, model, tb, out))
    # tb_data's expected outputs: the emulator of the IR just written, on the float32 vectors the testbench reads
    write_tb_outputs(path, Emulator.from_project(path).run(read_tb_inputs(path)).values())
    atomic_write_text(path / "skiplstm_inputs.json", json.dumps({"inputs": key}))
    stage(f"hls: {_label(recipe)}: wrote {path} ({time.time() - t0:.1f} s)")
    return path


def _measured_densities(recipe: dict, model, tb, out) -> dict:
    """Per SparseStateLSTM (Keras name): (input density, state density) for the LOOP_TRIPCOUNT averages:
    the state density is 1 - the trained model's state sparsity (train_metrics.json), the first layer's
    input density the nonzero fraction of the test vectors (1 for token ids), a later layer's the state
    density of the layer before it."""
    import keras

    from pipeline.layers import SparseStateLSTM

    path = run_dir(recipe, out) / "train_metrics.json"
    sparsity = json.loads(path.read_text())["test"].get("state_sparsity", {}) if path.is_file() else {}
    tokens = any(isinstance(lyr, keras.layers.Embedding) for lyr in model.layers)
    x_density = 1.0 if tokens else float(np.count_nonzero(tb)) / max(1, np.size(tb))
    out_map = {}
    for layer in model.layers:
        if isinstance(layer, SparseStateLSTM):
            state = 1.0 - float(sparsity.get(layer.name, 0.0))
            out_map[layer.name] = (x_density, state)
            x_density = state
    return out_map


def _test_split(recipe: Recipe):
    from pipeline.data import load_dataset

    return load_dataset(recipe)


def _emulator(recipe: Recipe, root=HLS_ROOT):
    """The emulator of the run's generated project: the IR the hls stage saved in
    ``<root>/<recipe>/seed<N>/`` (`Emulator.from_project`); FileNotFoundError saying to run the hls stage
    when it is missing, `pipeline.ir.InvalidIRError` (a ValueError) when it is damaged."""
    from pipeline.emulator import Emulator

    return Emulator.from_project(project_dir(recipe, root), hint=_hint(recipe, "hls"))


def _lstm_ids(project: Path) -> list[int]:
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    return [layer["layer_id"] for layer in manifest["lstm_layers"]]


def run_csim(recipe_name: str, out="out", root=HLS_ROOT, seed: int | None = None, force: bool = False) -> dict:
    """C-simulate the first ``hls.test_vectors`` test samples in both modes and verify them against
    the emulator, bit for bit (outputs, nnz and cycles per step). Raises `VerificationError`."""
    from pipeline import csim
    from pipeline.verify import compare

    recipe = load_recipe(recipe_name, seed=seed)
    project = project_dir(recipe, root)
    if not (project / "skiplstm_manifest.json").is_file():
        raise FileNotFoundError(f"{project} is not a generated project: run the hls stage first ({_hint(recipe, 'hls')})")
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("csim", recipe, out, root, force)
    if fresh:
        return json.loads(record.read_text())
    check_output_dir(d)
    ds = _test_split(recipe)
    n = int(recipe.hls.test_vectors)
    x = ds.test.x[:n]
    t0 = time.time()
    stage(f"csim: {_label(recipe)}: g++ build of {project} (cached by content hash)")
    csim.build(project)
    t_build = time.time() - t0
    stage(f"csim: {_label(recipe)}: running {len(x)} test vectors in sparse and dense mode")
    t1 = time.time()
    res = csim.run(project, x)
    t_run = time.time() - t1
    emu = _emulator(recipe, root).run(x)
    checks = compare(res, emu, _lstm_ids(project))
    # cycles counted in C-simulation, start to done (init included), summed over layers and vectors
    cyc_s = int(sum(np.sum(res.layer_sequences("sparse", lid)[:, 3]) for lid in _lstm_ids(project)))
    cyc_d = int(sum(np.sum(res.layer_sequences("dense", lid)[:, 3]) for lid in _lstm_ids(project)))
    result = {
        "inputs": key, "project": str(project), "vectors": len(x), "checks": checks,
        "cycles_sparse": cyc_s, "cycles_dense": cyc_d, "speedup": cyc_d / cyc_s,
        "build_s": round(t_build, 2), "run_s": round(t_run, 2),
        "steps_per_s": round(2 * len(x) * sum(la["steps"] for la in
                                              json.loads((project / "skiplstm_manifest.json").read_text())["lstm_layers"])
                             / max(t_run, 1e-9), 1),
    }
    atomic_write_text(record, json.dumps(result, indent=2, sort_keys=True))
    stage(f"csim: {_label(recipe)}: csim == emulator bit for bit, sparse == dense; "
          f"cycles dense/sparse {cyc_d}/{cyc_s} = {cyc_d / cyc_s:.2f}x")
    return result


def _cost_totals(costs: list[dict]) -> dict:
    """Sums over layers and steps of `accelerator.layer_costs` dicts: cycles and MACs per mode, and
    speedup = dense / sparse cycles, ideal = dense / sparse MACs, energy ratio = dense / sparse energy."""
    tot = {f"{q}_{mode}": sum(int(np.sum(c[f"{mode}_{key}"])) for c in costs)
           for q, key in (("cycles", "sequence_cycles"), ("macs", "macs")) for mode in ("sparse", "dense")}
    e_s, e_d = (sum(c[f"{mode}_energy_pj"] for c in costs) for mode in ("sparse", "dense"))
    return {**tot, "speedup": tot["cycles_dense"] / tot["cycles_sparse"],
            "ideal_speedup": tot["macs_dense"] / max(tot["macs_sparse"], 1), "energy_ratio_model": e_d / e_s}


def _folded_costs(model, traces) -> dict | None:
    """For a model whose Embedding feeds the first SparseStateLSTM, not folded: the totals the same run
    would have with ``hls.fold_embedding = true``. Folding is bit-identical (same states, tested in
    tests/test_generate.py), so only the first layer's input term changes: one row per step."""
    import dataclasses

    import keras

    if not traces or traces[0].shape.token_input or not any(
            isinstance(lyr, keras.layers.Embedding) for lyr in model.layers):
        return None
    first = traces[0]
    folded = accelerator.layer_costs(dataclasses.replace(first.shape, token_input=True), np.ones_like(first.nnz_x),
                                     first.nnz_h)
    totals = _cost_totals([folded] + [tr.costs() for tr in traces[1:]])
    return {k: totals[k] for k in ("cycles_sparse", "cycles_dense", "speedup", "ideal_speedup", "energy_ratio_model")}


def run_emulate(recipe_name: str, out="out", split: str = "test", seed: int | None = None,
                force: bool = False, root=HLS_ROOT) -> dict:
    """Emulate the whole split at fixed point: metric vs float, state sparsity, cycles, energy, overflow."""
    from pipeline.metrics import task_metric
    from pipeline.sparsity import sequence_state_sparsity

    recipe = load_recipe(recipe_name, seed=seed)
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("emulate", recipe, out, root, force=force, split=split)
    if fresh:
        return json.loads(record.read_text())
    model = _load_model(recipe, out)
    check_output_dir(d)
    ds = _test_split(recipe)
    s = ds.split(split)
    stage(f"emulate: {_label(recipe)}: {len(s)} {split} sequences at fixed point")
    emu = _emulator(recipe, root)
    t0 = time.time()
    res = emu.run(s.x, keep_states=True)
    wall = time.time() - t0
    out_shape = (len(s),) + tuple(model.output_shape[1:])
    fixed_logits = res.values().reshape(out_shape)
    float_logits = model.predict(s.x, batch_size=256, verbose=0)
    layers = {}
    costs = []
    for tr in res.traces:
        c = tr.costs()
        layers[tr.layer] = {
            "state_sparsity": sequence_state_sparsity(tr.states),
            "cycles_sparse": accelerator.total_cycles(c, "sparse"), "cycles_dense": accelerator.total_cycles(c, "dense"),
            "init_cycles_sparse": int(c["sparse_init_cycles"]), "init_cycles_dense": int(c["dense_init_cycles"]),
            "per_step_cycles_sparse": c["sparse_cycles"].mean(axis=0).tolist(),
            "per_step_cycles_dense": c["dense_cycles"].mean(axis=0).tolist(),
            "lanes": tr.shape.lanes, "units": tr.shape.units, "n_in": tr.shape.n_in,
            "token_input": tr.shape.token_input,
        }
        costs.append(c)
    steps = sum(tr.nnz_x.size for tr in res.traces)
    result = {
        "inputs": key, "recipe": recipe.name, "seed": recipe.seed, "split": split, "n": len(s),
        "precision": recipe.hls.precision,
        "float": task_metric(float_logits, s.y, ds.task),
        "fixed": task_metric(fixed_logits, s.y, ds.task),
        "max_abs_err_vs_float": float(np.abs(fixed_logits - float_logits).max()),
        "mean_abs_err_vs_float": float(np.abs(fixed_logits - float_logits).mean()),
        "layers": layers,
        **_cost_totals(costs),
        # per sequence, summed over the SparseStateLSTM layers, start to done (what csynth/cosim latency is set beside)
        "sequence_cycles": {mode: {"min": int(seq.min()), "avg": float(seq.mean()), "max": int(seq.max())}
                            for mode in ("sparse", "dense")
                            for seq in [sum(c[f"{mode}_sequence_cycles"] for c in costs)]},
        "overflow": res.overflow, "overflow_suggestions": res.overflow_suggestions(), "paths": res.path,
        "emulator_steps_per_s": round(steps / max(wall, 1e-9), 1),
    }
    folded = _folded_costs(model, res.traces)
    if folded:
        result["folded_embedding"] = folded
    atomic_write_text(record, json.dumps(result, indent=2, sort_keys=True))
    stage(f"emulate: {_label(recipe)}: {result['fixed']['metric']} fixed {result['fixed']['value']:.4f} vs float "
          f"{result['float']['value']:.4f}; speedup {result['speedup']:.2f}x (ideal {result['ideal_speedup']:.2f}x); "
          f"overflows {sum(res.overflow.values())}")
    if folded:
        stage(f"emulate: {_label(recipe)}: with hls.fold_embedding = true (same bits): speedup "
              f"{folded['speedup']:.2f}x (ideal {folded['ideal_speedup']:.2f}x)")
    for name, sug in result["overflow_suggestions"].items():
        stage(f"emulate: {_label(recipe)}: {name} overflowed {sug['count']} times (max |v| {sug['max_abs']:.4g} > "
              f"{sug['type']}): widen it to {sug['suggest']} ({sug['set']})")
    return result


def run_rtl(recipe_name: str, out="out", seed: int | None = None, force: bool = False, root=HLS_ROOT) -> dict:
    """The RTL twin (pipeline/rtl): Verilog generated for each SparseStateLSTM, built with Verilator, the
    first ``hls.test_vectors`` test sequences run in sparse and dense mode and on the dense-only engine;
    RTL == emulator bit for bit and RTL clock cycles == pipeline/accelerator.py per step and per sequence,
    or `RtlMismatch`. With ``hls.rtl_synth_lanes`` > 0, Yosys estimates the resources of each layer built
    with that many lanes (both builds; Yosys missing: said loudly, the estimate skipped). Writes
    ``<out>/<recipe>/rtl.json`` atomically; sources and builds in ``<out>/<recipe>/rtl/``."""
    import dataclasses
    import shutil as _shutil

    from pipeline.rtl import generate as rtl_generate
    from pipeline.rtl import sim as rtl_sim
    from pipeline.rtl import synth as rtl_synth

    recipe = load_recipe(recipe_name, seed=seed)
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("rtl", recipe, out, root, force=force)
    if fresh:
        return json.loads(record.read_text())
    emu = _emulator(recipe, root)  # the project's saved IR (an untrained run has none: "run the hls stage")
    check_output_dir(d)
    x = _test_split(recipe).test.x[: int(recipe.hls.test_vectors)]
    stage(f"rtl: {_label(recipe)}: Verilator build and simulation of {len(x)} test vectors, sparse and dense mode")
    t0 = time.time()
    report = rtl_sim.run_model(emu, x, d / "rtl", check=True, dense_only=True)
    for layer in report["layers"]:
        modes = layer["modes"]
        stage(f"rtl: {_label(recipe)}: {layer['layer']}: RTL == emulator bit for bit, cycles == model; measured "
              f"dense/sparse {modes['dense']['total_cycles']}/{modes['sparse']['total_cycles']} = "
              f"{layer['speedup_dense_over_sparse']:.2f}x; {modes['sparse']['sim_steps_per_s']:,.0f} steps/s sparse")
    lanes = int(recipe.hls.rtl_synth_lanes)
    report["resources"] = None
    if lanes:
        if _shutil.which("yosys") is None:
            stage(f"rtl: {_label(recipe)}: WARNING: yosys not found, resource estimate SKIPPED "
                  "(apt-get install yosys, or make setup as root)")
            report["resources"] = {"skipped": "yosys not found (apt-get install yosys)"}
        else:
            report["resources"] = {}
            for case in rtl_sim.emulate_layers(emu, x[:1]):
                spec = case.spec if lanes == case.spec.lanes else dataclasses.replace(case.spec, lanes=lanes)
                spec.check()
                layer = rtl_generate.generate_layer(spec, d / "rtl" / f"synth_p{lanes}" / spec.module)
                stage(f"rtl: {_label(recipe)}: Yosys synth_xilinx of {spec.name} at {lanes} lanes, sparse-capable "
                      "and dense-only (minutes)")
                res = rtl_synth.synthesize(layer, part=recipe.hls.part)
                res["lanes"] = lanes
                res["full_design"] = lanes == case.spec.lanes
                report["resources"][spec.name] = res
    report["inputs"] = key
    report["vectors"] = len(x)
    report["wall_s"] = round(time.time() - t0, 1)
    rtl_sim.write_rtl_json(record, report)
    return report


def run_report(recipe_name: str, out="out", root=HLS_ROOT, seed: int | None = None) -> Path:
    from pipeline.report import write_report

    recipe = load_recipe(recipe_name, seed=seed)
    path = write_report(recipe, run_dir(recipe, out), project_dir(recipe, root))
    stage(f"report: {path}")
    return path


def run_demo(recipe_name: str, out="out", root=HLS_ROOT, seed: int | None = None, epochs: int | None = None,
             limit: int | None = None) -> Path:
    """All stages of one run: train, hls, csim, emulate, rtl, report."""
    t0 = time.time()
    run_train(recipe_name, out, seed=seed, epochs=epochs, limit=limit)
    run_hls(recipe_name, out, root, seed=seed)
    run_csim(recipe_name, out, root, seed=seed)
    run_emulate(recipe_name, out, seed=seed, root=root)
    run_rtl(recipe_name, out, seed=seed, root=root)
    path = run_report(recipe_name, out, root, seed=seed)
    stage(f"demo: done in {time.time() - t0:.0f} s")
    return path
