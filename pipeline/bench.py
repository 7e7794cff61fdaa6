"""``make bench``: ratios measured side by side in one run, written to ``bench/results.json``.

1. accelerator: cycles dense vs sparse at synthetic state sparsities (random LSTM(128) models,
   threshold chosen per target), speedup and the ideal bound dense MACs / sparse MACs;
2. emulator vs C-simulation: time steps per second on the same LSTM(128) model and inputs;
3. training: step time SparseStateLSTM / keras.layers.LSTM, same shapes, same run;
4. generation + g++ build vs hls4ml's own ``compile()`` of a stock LSTM(64);
5. peak memory (ru_maxrss) after each part.
Each timing is the median of ``REPEATS`` runs, with min and max.
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.util import atomic_write_text, stage

REPEATS = 3


def _timed(fn, repeats=REPEATS):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model(units, n_in=28, steps=28, threshold=0.0, seed=0):
    import keras

    from pipeline.layers import SparseStateLSTM

    inp = keras.Input((steps, n_in), name="x")
    layer = SparseStateLSTM(units, threshold=threshold, name="lstm")
    model = keras.Model(inp, keras.layers.Dense(10, name="head")(layer(inp)), name=f"bench_{units}")
    rng = np.random.RandomState(seed)
    layer.set_weights([rng.randn(n_in, 4 * units) * 0.3, rng.randn(units, 4 * units) * 0.3 / np.sqrt(units) * 4,
                       rng.randn(4 * units) * 0.2])
    return model


def bench_accelerator(x) -> list[dict]:
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert
    from pipeline.recipes import DEFAULTS

    rows = []
    hls = dict(DEFAULTS["hls"], lanes=32)
    for thr in (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        model = _model(128, threshold=thr)
        with tempfile.TemporaryDirectory() as tmp:
            res = Emulator(convert(model, hls, tmp)).run(x, keep_states=True)
        tr = res.traces[0]
        c = tr.costs()
        sparsity = float(np.mean(tr.states[:, :-1] == 0))
        speed = c["dense_cycles"].sum() / c["sparse_cycles"].sum()
        bound = c["dense_macs"].sum() / max(c["sparse_macs"].sum(), 1)
        rows.append({"threshold": thr, "state_sparsity": sparsity, "speedup": float(speed),
                     "ideal_bound": float(bound), "fraction_of_bound": float(speed / bound)})
        stage(f"bench: accelerator LSTM(128) P=32: sparsity {sparsity:.1%}: speedup {speed:.2f}x, "
              f"bound {bound:.2f}x ({speed / bound:.0%})")
    return rows


def bench_emulator_vs_csim(x) -> dict:
    from pipeline import csim
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert, generate
    from pipeline.recipes import DEFAULTS

    hls = dict(DEFAULTS["hls"], lanes=32)
    model = _model(128, threshold=0.3)
    with tempfile.TemporaryDirectory() as tmp:
        emu = Emulator(convert(model, hls, Path(tmp) / "c"))
        project = generate(model, hls, tmp)
        csim.build(project)
        steps = x.shape[0] * x.shape[1]
        t_emu = _timed(lambda: emu.run(x))
        t_csim = _timed(lambda: csim.run(project, x), repeats=1)
    # csim runs both modes; count its steps twice
    emu_rate = steps / t_emu["median_s"]
    csim_rate = 2 * steps / t_csim["median_s"]
    stage(f"bench: emulator {emu_rate:,.0f} steps/s vs csim {csim_rate:,.0f} steps/s = {emu_rate / csim_rate:.1f}x")
    return {"batch": x.shape[0], "emulator": t_emu, "csim": t_csim, "emulator_steps_per_s": emu_rate,
            "csim_steps_per_s": csim_rate, "ratio": emu_rate / csim_rate}


def bench_training() -> dict:
    import keras

    from pipeline.layers import SparseStateLSTM

    out = {}
    rng = np.random.RandomState(0)
    for units in (64, 128, 256):
        x = rng.rand(64, 28, 28).astype("float32")
        y = rng.randint(0, 10, 64)
        times = {}
        for name, layer in (("keras_lstm", keras.layers.LSTM(units)), ("sparse_state_lstm", SparseStateLSTM(units, 0.1))):
            inp = keras.Input((28, 28))
            m = keras.Model(inp, keras.layers.Dense(10)(layer(inp)))
            m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            m.train_on_batch(x, y)
            times[name] = _timed(lambda m=m, x=x, y=y: [m.train_on_batch(x, y) for _ in range(5)])
        ratio = times["sparse_state_lstm"]["median_s"] / times["keras_lstm"]["median_s"]
        out[units] = {**times, "ratio": ratio}
        stage(f"bench: training step LSTM({units}): SparseStateLSTM / keras LSTM = {ratio:.2f}x")
    return out


def bench_build() -> dict:
    import hls4ml
    import keras

    from pipeline import csim
    from pipeline.hls.project import generate
    from pipeline.recipes import DEFAULTS

    model = _model(64)
    inp = keras.Input((28, 28))
    stock = keras.Model(inp, keras.layers.Dense(10)(keras.layers.LSTM(64)(inp)))
    with tempfile.TemporaryDirectory() as tmp:
        def ours():
            p = generate(model, dict(DEFAULTS["hls"]), Path(tmp) / "ours")
            (p / ".skiplstm_csim.sha256").unlink(missing_ok=True)
            csim.build(p)

        def theirs():
            cfg = hls4ml.utils.config_from_keras_model(stock, granularity="model", default_precision="ap_fixed<16,6>")
            hm = hls4ml.converters.convert_from_keras_model(stock, hls_config=cfg, output_dir=str(Path(tmp) / "stock"),
                                                            backend="Vivado", io_type="io_parallel")
            hm.compile()

        t_ours, t_theirs = _timed(ours, 1), _timed(theirs, 1)
    ratio = t_ours["median_s"] / t_theirs["median_s"]
    stage(f"bench: generate+g++ LSTM(64) {t_ours['median_s']:.1f} s vs hls4ml compile() {t_theirs['median_s']:.1f} s "
          f"= {ratio:.2f}x")
    return {"ours": t_ours, "hls4ml_compile": t_theirs, "ratio": ratio}


def main(out_dir="bench") -> dict:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pipeline.data import load_mnist_rows

    x = load_mnist_rows().test.x[:256]
    results = {"machine": {"cpus": os.cpu_count()}, "repeats": REPEATS}
    results["accelerator"] = bench_accelerator(x)
    results["peak_mb_after_accelerator"] = _peak_mb()
    results["emulator_vs_csim"] = bench_emulator_vs_csim(x)
    results["peak_mb_after_csim"] = _peak_mb()
    results["training"] = bench_training()
    results["peak_mb_after_training"] = _peak_mb()
    results["build"] = bench_build()
    results["peak_mb_after_build"] = _peak_mb()
    path = Path(out_dir) / "results.json"
    atomic_write_text(path, json.dumps(results, indent=2, sort_keys=True, default=float))
    stage(f"bench: wrote {path}")
    return results
