"""The pipeline's stages, each callable from Python and from the CLI (`pipeline.cli`):

    train -> hls -> csim -> emulate -> rtl -> report        (demo = all of them)

A run is one recipe at one of its seeds (``seeds = [...]`` in the recipe; default: its first seed).
Every stage function takes the recipe as a validated `pipeline.recipes.Recipe` (used as it is; ``seed``
picks another of its seeds) or as a name in ``models/`` or a ``.toml`` path (loaded and validated once).
Artifacts: ``<out>/<recipe>/seed<N>/`` holds model.keras, train_metrics.json, csim.json, emulate.json,
rtl.json, report.md and plots; the generated project is ``<root>/<recipe>/seed<N>/`` (root
``hls_project``). Stages are incremental through `pipeline.records` (`stage_record`): each record stores the key
of what it consumed (its inputs, the model and a digest of the code that computes it) and the stage is
skipped when that key is unchanged; training is keyed by what trains, so a hardware edit never retrains.
`record_status` tells whether a stage's record is up to date, missing or stale without running
anything (what ``make results`` and ``make bench`` read, without importing this module).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from pipeline.recipes import Recipe, as_recipe, load_recipe, run_dir
from pipeline.recipes import run_label as _label
from pipeline.records import (  # noqa: F401 (the stage layer's names, re-exported for callers of pipeline.stages)
    HLS_ROOT,
    STAGES,
    code_digest,
    project_dir,
    record_path,
    record_status,
    stage_key,
    stage_record,
)
from pipeline.records import hint as _hint
from pipeline.util import atomic_write_text, check_output_dir, stage

RecipeLike = Recipe | str | os.PathLike  # a validated recipe, or a name in models/ or a .toml path


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


def run_train(recipe: RecipeLike, out="out", seed: int | None = None, force: bool = False,
              epochs: int | None = None, limit: int | None = None) -> dict:
    """Train one run (the recipe at ``seed``, default its first seed) into ``<out>/<recipe>/seed<N>/``."""
    recipe = as_recipe(recipe, seed)
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


def run_sweep(recipe: RecipeLike, out="out", seeds: list[int] | None = None, jobs: int = 1, force: bool = False,
              epochs: int | None = None, limit: int | None = None) -> list[dict]:
    """Train several seeds of one recipe (``seeds``; None: every seed the recipe lists), ``jobs`` at a
    time. Each run is the same deterministic run as ``run_train`` alone: with ``jobs`` > 1 each one is
    its own process (``python -m pipeline.cli train --seed N``), its console output in
    ``<out>/<recipe>/seed<N>.train.log``. Returns the runs' train metrics in seed order; a failed run is
    an error naming its seed and log after the others have finished. A `Recipe` trained in parallel
    must be its file's (each process loads the file): a changed copy (`Recipe.override`) is refused there."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    recipe = as_recipe(recipe)
    seeds = list(recipe.seeds) if seeds is None else list(seeds)
    unknown = [s for s in seeds if s not in recipe.seeds]
    if not seeds or unknown:
        raise ValueError(f"recipe {recipe.name}: seeds {unknown or seeds} are not among its seeds {list(recipe.seeds)}; "
                         f"add them to seeds = [...] in {recipe.path}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got jobs={jobs!r}")
    if jobs == 1 or len(seeds) == 1:
        return [run_train(recipe, out, seed=s, force=force, epochs=epochs, limit=limit) for s in seeds]
    source = recipe.path or recipe.name
    if not recipe.path or load_recipe(recipe.path).config() != recipe.config():
        raise ValueError(f"recipe {recipe.name}: a changed copy of a recipe (Recipe.override) cannot be trained in "
                         f"parallel processes, which load {source}; save it as a .toml file, or use jobs=1")
    base = Path(out) / recipe.name
    check_output_dir(base)  # made here, so that a failed run removes only its own seed folder
    stage(f"train: {recipe.name}: seeds {seeds}, {jobs} at a time (output of each in {base}/seed<N>.train.log)")

    def one(seed: int) -> int:
        cmd = [sys.executable, "-m", "pipeline.cli", "train", "--model", str(source), "--out", str(out),
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
    return [json.loads((run_dir(recipe.at_seed(s), out) / "train_metrics.json").read_text()) for s in seeds]


def run_hls(recipe: RecipeLike, out="out", root=HLS_ROOT, seed: int | None = None, force: bool = False) -> Path:
    """Generate the run's HLS project ``<root>/<recipe>/seed<N>/`` from its trained model and the recipe's
    ``[hls]`` section; the testbench's vectors are the first ``hls.test_vectors`` test inputs, its expected
    outputs the emulator's of the IR just written."""
    recipe = as_recipe(recipe, seed)
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
                    densities=_expected_densities(recipe, model, tb, out))
    # tb_data's expected outputs: the emulator of the IR just written, on the float32 vectors the testbench reads
    write_tb_outputs(path, Emulator.from_project(path).run(read_tb_inputs(path)).values())
    atomic_write_text(path / "skiplstm_inputs.json", json.dumps({"inputs": key}))
    stage(f"hls: {_label(recipe)}: wrote {path} ({time.time() - t0:.1f} s)")
    return path


def _expected_densities(recipe: Recipe, model, tb, out) -> dict:
    """Per SparseStateLSTM (Keras name): (input density, state density) for the LOOP_TRIPCOUNT averages
    (`pipeline.costs.expected_densities`), from the trained model's state sparsity
    (train_metrics.json) and the nonzero fraction of the test vectors (1 for token ids)."""
    import keras

    from pipeline.costs import expected_densities
    from pipeline.layers import SparseStateLSTM

    path = run_dir(recipe, out) / "train_metrics.json"
    sparsity = json.loads(path.read_text())["test"].get("state_sparsity", {}) if path.is_file() else {}
    tokens = any(isinstance(lyr, keras.layers.Embedding) for lyr in model.layers)
    x_density = 1.0 if tokens else float(np.count_nonzero(tb)) / max(1, np.size(tb))
    names = [layer.name for layer in model.layers if isinstance(layer, SparseStateLSTM)]
    return expected_densities(names, sparsity, x_density)


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


def run_csim(recipe: RecipeLike, out="out", root=HLS_ROOT, seed: int | None = None, force: bool = False) -> dict:
    """C-simulate the first ``hls.test_vectors`` test samples in both modes and verify them against
    the emulator, bit for bit (outputs, nnz and cycles per step). Raises `VerificationError`."""
    from pipeline import csim
    from pipeline.verify import compare

    recipe = as_recipe(recipe, seed)
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
    engine = ("weight-sparse" if any(tr.engine_chunks for tr in emu.traces) else "dense-weight")
    result = {
        "inputs": key, "project": str(project), "vectors": len(x), "checks": checks, "engine": engine,
        "cycles_sparse": cyc_s, "cycles_dense": cyc_d, "speedup": cyc_d / cyc_s,
        "build_s": round(t_build, 2), "run_s": round(t_run, 2),
        "steps_per_s": round(2 * len(x) * sum(la["steps"] for la in
                                              json.loads((project / "skiplstm_manifest.json").read_text())["lstm_layers"])
                             / max(t_run, 1e-9), 1),
    }
    atomic_write_text(record, json.dumps(result, indent=2, sort_keys=True))
    stage(f"csim: {_label(recipe)}: csim == emulator bit for bit, sparse == dense; "
          f"cycles dense/sparse {cyc_d}/{cyc_s} = {cyc_d / cyc_s:.2f}x"
          + (" (the weight-sparse engine: dense = every column in KE cycles)" if engine == "weight-sparse" else ""))
    return result


def run_emulate(recipe: RecipeLike, out="out", split: str = "test", seed: int | None = None,
                force: bool = False, root=HLS_ROOT) -> dict:
    """Emulate the whole split at fixed point on the emulator of the project's saved IR: metric vs float,
    state sparsity, cycles, energy, overflow (the record: `pipeline.emulate.emulate_record`)."""
    import keras

    from pipeline.emulate import emulate_record

    recipe = as_recipe(recipe, seed)
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("emulate", recipe, out, root, force=force, split=split)
    if fresh:
        return json.loads(record.read_text())
    model = _load_model(recipe, out)
    check_output_dir(d)
    ds = _test_split(recipe)
    s = ds.split(split)
    emu = _emulator(recipe, root)  # a missing project is an error before the line announcing the run
    stage(f"emulate: {_label(recipe)}: {len(s)} {split} sequences at fixed point")
    t0 = time.time()
    res = emu.run(s.x, keep_states=True)
    wall = time.time() - t0
    float_logits = model.predict(s.x, batch_size=256, verbose=0)
    has_embedding = any(isinstance(lyr, keras.layers.Embedding) for lyr in model.layers)
    result = {"inputs": key, "recipe": recipe.name, "seed": recipe.seed, "split": split, "n": len(s),
              "precision": recipe.hls.precision,
              **emulate_record(res, float_logits, s.y, ds.task, wall, has_embedding)}
    atomic_write_text(record, json.dumps(result, indent=2, sort_keys=True))
    stage(f"emulate: {_label(recipe)}: {result['fixed']['metric']} fixed {result['fixed']['value']:.4f} vs float "
          f"{result['float']['value']:.4f}; speedup {result['speedup']:.2f}x (ideal {result['ideal_speedup']:.2f}x); "
          f"overflows {sum(res.overflow.values())}")
    if "speedup_weight_sparse" in result:
        stage(f"emulate: {_label(recipe)}: weight-sparse engine (modelled): speedup {result['speedup_weight_sparse']:.2f}x "
              f"over dense (ideal {result['ideal_speedup_weight_sparse']:.2f}x)")
    folded = result.get("folded_embedding")
    if folded:
        stage(f"emulate: {_label(recipe)}: with hls.fold_embedding = true (same bits): speedup "
              f"{folded['speedup']:.2f}x (ideal {folded['ideal_speedup']:.2f}x)")
    for name, sug in result["overflow_suggestions"].items():
        if recipe.quant.enabled:  # the layers trained through these very saturations: Keras computed them too
            stage(f"emulate: {_label(recipe)}: {name} saturated {sug['count']} times (max |v| {sug['max_abs']:.4g} > "
                  f"{sug['type']}), as in Keras: the quantisation-aware layers trained with this type ([quant]; a "
                  f"wider one, e.g. {sug['suggest']}, means retraining)")
            continue
        stage(f"emulate: {_label(recipe)}: {name} overflowed {sug['count']} times (max |v| {sug['max_abs']:.4g} > "
              f"{sug['type']}): widen it to {sug['suggest']} ({sug['set']})")
    return result


def run_rtl(recipe: RecipeLike, out="out", seed: int | None = None, force: bool = False, root=HLS_ROOT) -> dict:
    """The RTL twin (pipeline/rtl): Verilog generated for each SparseStateLSTM, built with Verilator, the
    first ``hls.test_vectors`` test sequences run in sparse and dense mode and on the dense-only engine;
    RTL == emulator bit for bit and RTL clock cycles == pipeline/accelerator.py per step and per sequence,
    or `RtlMismatch`. With ``hls.rtl_synth_lanes`` > 0, Yosys estimates the resources of each layer built
    with that many lanes (both builds; Yosys missing: said loudly, the estimate skipped). Writes
    ``<out>/<recipe>/rtl.json`` atomically; sources and builds in ``<out>/<recipe>/rtl/``."""
    import dataclasses
    import shutil as _shutil
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.rtl import generate as rtl_generate
    from pipeline.rtl import sim as rtl_sim
    from pipeline.rtl import synth as rtl_synth

    recipe = as_recipe(recipe, seed)
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("rtl", recipe, out, root, force=force)
    if fresh:
        return json.loads(record.read_text())
    emu = _emulator(recipe, root)  # the project's saved IR (an untrained run has none: "run the hls stage")
    check_output_dir(d)
    x = _test_split(recipe).test.x[: int(recipe.hls.test_vectors)]
    t0 = time.time()
    from pipeline.rtl import pnr as rtl_pnr

    specs = [case.spec for case in rtl_sim.emulate_layers(emu, x[:1])]
    lanes = int(recipe.hls.rtl_synth_lanes)
    yosys = _shutil.which("yosys") is not None
    synth_jobs: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
        # the Yosys estimate runs beside the Verilator builds and simulations (both keep the 2 cores busy;
        # one after the other each leaves a core idle for a while)
        if lanes and yosys:
            for spec in specs:
                spec = spec if lanes == spec.lanes else dataclasses.replace(spec, lanes=lanes)
                spec.check()
                layer = rtl_generate.generate_layer(spec, d / "rtl" / f"synth_p{lanes}" / spec.module)
                stage(f"rtl: {_label(recipe)}: Yosys synth_xilinx of {spec.name} at {lanes} lanes, sparse-capable "
                      "and dense-only, beside the simulations (minutes)")
                synth_jobs[spec.name] = pool.submit(rtl_synth.synthesize, layer, part=recipe.hls.part)
        stage(f"rtl: {_label(recipe)}: Verilator build and simulation of {len(x)} test vectors, sparse and dense "
              "mode")
        report = rtl_sim.run_model(emu, x, d / "rtl", check=True, dense_only=True, jobs=2)
        for layer in report["layers"]:
            modes = layer["modes"]
            stage(f"rtl: {_label(recipe)}: {layer['layer']}: RTL == emulator bit for bit, cycles == model; measured "
                  f"dense/sparse {modes['dense']['total_cycles']}/{modes['sparse']['total_cycles']} = "
                  f"{layer['speedup_dense_over_sparse']:.2f}x")
            if "weight_sparse" in modes:
                ws = modes["weight_sparse"]
                stage(f"rtl: {_label(recipe)}: {layer['layer']}: weight-sparse engine (KE = {ws['weight_chunks']} pairs "
                      f"a column, C = {4 * layer['units'] // layer['lanes']}): == emulator, cycles == model; measured "
                      f"dense-only/weight+state {modes['dense_only']['total_cycles']}/{ws['total_cycles']} = "
                      f"{modes['dense_only']['total_cycles'] / max(1, ws['total_cycles']):.2f}x")
        # does each layer fit the [fpga] part? (the generator's arithmetic: no tool runs; `make pnr` places it)
        dev = rtl_pnr.device(recipe.fpga.part)
        report["ecp5_fit"] = {spec.name: rtl_pnr.fit_summary(spec, dev, recipe.fpga.lanes) for spec in specs}
        for la in report["layers"]:  # a weight-sparse project's engine too (its ROMs: KE pairs a column)
            if "weight_sparse" in la:
                spec = next(s for s in specs if s.name == la["layer"])
                report["ecp5_fit"][f"{spec.name} (weight-sparse engine)"] = rtl_pnr.fit_summary(
                    spec.weight_sparse(la["weight_sparse"]["weight_chunks"]), dev, recipe.fpga.lanes)
        report["resources"] = None
        if lanes and not yosys:
            stage(f"rtl: {_label(recipe)}: WARNING: yosys not found, resource estimate SKIPPED "
                  "(apt-get install yosys, or make tools as root)")
            report["resources"] = {"skipped": "yosys not found (apt-get install yosys)"}
        elif lanes:
            report["resources"] = {}
            for spec in specs:
                res = synth_jobs[spec.name].result()
                res["lanes"] = lanes
                res["full_design"] = lanes == spec.lanes
                report["resources"][spec.name] = res
                stage(f"rtl: {_label(recipe)}: Yosys estimate of {spec.name} done")
    report["inputs"] = key
    report["vectors"] = len(x)
    report["wall_s"] = round(time.time() - t0, 1)
    rtl_sim.write_rtl_json(record, report)
    return report


def run_pnr(recipe: RecipeLike, out="out", seed: int | None = None, force: bool = False, root=HLS_ROOT) -> dict:
    """Place and route (pipeline/rtl/pnr.py): each SparseStateLSTM's streaming top, generated at
    ``fpga.lanes`` (0: its own lanes), simulated on the first ``hls.test_vectors`` test sequences (RTL ==
    emulator, cycles == model: the cycles the time figures divide), then through Yosys synth_ecp5,
    nextpnr-ecp5 (``[fpga]`` part, package, speed grade, target clock, one run per nextpnr seed) and
    ecppack, sparse-capable and dense-only. A layer that does not fit is refused before any tool runs.
    Writes ``<out>/<recipe>/seed<N>/pnr.json`` atomically (Fmax, critical path, utilisation, latency in
    microseconds) and keeps each build's bitstream in ``<out>/<recipe>/seed<N>/pnr/<module>/``."""
    from pipeline.rtl import pnr as rtl_pnr
    from pipeline.rtl.sim import write_rtl_json

    recipe = as_recipe(recipe, seed)
    d = run_dir(recipe, out)
    record, key, fresh = stage_record("pnr", recipe, out, root, force=force)
    if fresh:
        return json.loads(record.read_text())
    emu = _emulator(recipe, root)
    check_output_dir(d)
    x = _test_split(recipe).test.x[: int(recipe.hls.test_vectors)]
    f = recipe.fpga
    t0 = time.time()
    report = rtl_pnr.run_model(emu, x, d / "pnr", part=f.part, package=f.package, speed=f.speed, freq_mhz=f.freq_mhz,
                               lanes=f.lanes, seeds=f.seeds, log=lambda m: stage(f"pnr: {_label(recipe)}: {m}"))
    for la in report["layers"]:
        lat = la["latency"]
        if "refused" in la:
            stage(f"pnr: {_label(recipe)}: {la['layer']}: dense-weight builds not placed: {la['refused']['dense-only']}")
        else:
            stage(f"pnr: {_label(recipe)}: {la['layer']} at {la['lanes']} lanes: post-route Fmax {la['fmax_mhz']['sparse-capable']:.1f} "
                  f"MHz sparse-capable, {la['fmax_mhz']['dense-only']:.1f} MHz dense-only (nextpnr's timing model); "
                  f"{lat['sparse_us_per_sequence']:.1f} / {lat['dense_us_per_sequence']:.1f} us a sequence sparse / dense: "
                  f"{lat['time_speedup']:.2f}x in time ({lat['cycle_speedup']:.2f}x in cycles)")
        if "weight-sparse" in la["fmax_mhz"]:
            vs = (f"{lat['weight_sparse_time_speedup']:.2f}x in time against dense-only ("
                  if "weight_sparse_time_speedup" in lat else "dense-only not placed; against its measured cycles (")
            stage(f"pnr: {_label(recipe)}: {la['layer']} at {la['lanes']} lanes: weight-sparse engine (KE "
                  f"{la['weight_sparse']['weight_chunks']}) {la['fmax_mhz']['weight-sparse']:.1f} MHz post-route; "
                  f"{lat['weight_sparse_us_per_sequence']:.1f} us a sequence: {vs}"
                  f"{lat['weight_sparse_cycle_speedup']:.2f}x in cycles)")
    report["inputs"] = key
    report["vectors"] = len(x)
    report["wall_s"] = round(time.time() - t0, 1)
    write_rtl_json(record, report)
    return report


def run_report(recipe: RecipeLike, out="out", root=HLS_ROOT, seed: int | None = None) -> Path:
    """Write the run's ``report.md`` and plots from its stage records (`pipeline.report.write_report`)."""
    from pipeline.report import write_report

    recipe = as_recipe(recipe, seed)
    path = write_report(recipe, run_dir(recipe, out), project_dir(recipe, root))
    stage(f"report: {path}")
    return path


def run_demo(recipe: RecipeLike, out="out", root=HLS_ROOT, seed: int | None = None, epochs: int | None = None,
             limit: int | None = None) -> Path:
    """All stages of one run: train, hls, csim, emulate, rtl, report (the recipe loaded and validated once)."""
    t0 = time.time()
    recipe = as_recipe(recipe, seed)
    run_train(recipe, out, epochs=epochs, limit=limit)
    run_hls(recipe, out, root)
    run_csim(recipe, out, root)
    run_emulate(recipe, out, root=root)
    run_rtl(recipe, out, root=root)
    path = run_report(recipe, out, root)
    stage(f"demo: done in {time.time() - t0:.0f} s")
    return path
