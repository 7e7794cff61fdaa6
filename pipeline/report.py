"""Report stage: ``report.md`` and PNG plots from the stage records of one recipe."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline import synth
from pipeline.util import atomic_write_text


def _load(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the stage that writes it first")
    return json.loads(path.read_text())


def plot_cycles(emu: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, layer in emu["layers"].items():
        steps = range(1, len(layer["per_step_cycles_dense"]) + 1)
        ax.plot(steps, layer["per_step_cycles_dense"], "--", label=f"{name} dense")
        ax.plot(steps, layer["per_step_cycles_sparse"], "-", label=f"{name} sparse")
    ax.set_xlabel("time step t")
    ax.set_ylabel("cycles per step (mean over sequences)")
    ax.set_title(f"{emu['recipe']}: accelerator cycles, dense vs sparse ({emu['speedup']:.2f}x)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(train: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = train["history"]
    fig, ax1 = plt.subplots(figsize=(7, 3.5))
    metric = "accuracy" if "accuracy" in hist else "bpc"
    for key in (metric, f"val_{metric}"):
        if key in hist:
            ax1.plot(range(1, len(hist[key]) + 1), hist[key], label=key)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(metric)
    ax2 = ax1.twinx()
    for key in hist:
        if key.endswith("_state_sparsity") and not key.startswith("val_"):
            ax2.plot(range(1, len(hist[key]) + 1), hist[key], ":", color="k", label=key)
    ax2.set_ylabel("state sparsity")
    ax2.set_ylim(0, 1)
    fig.legend(fontsize=8, loc="lower right")
    ax1.set_title(f"{train['recipe']}: training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def overflow_section(emu: dict) -> str:
    """The report's overflow lines: per tensor the count and, from ``overflow_suggestions``, the type,
    the largest |value| and a wider type that holds it."""
    over, suggestions = emu.get("overflow", {}), emu.get("overflow_suggestions", {})
    if not over:
        return "none"
    lines = []
    for name, count in sorted(over.items()):
        sug = suggestions.get(name)
        if not sug:
            lines.append(f"- {name}: {count} (widen this type)")
            continue
        wider = f"widen to `{sug['suggest']}`" if sug["suggest"] else "no fixed-point type of <= 64 bits holds it"
        lines.append(f"- {name}: {count} (type `{sug['type']}`, max |value| {sug['max_abs']:.4g}): {wider} "
                     f"({sug['set']})")
    return "\n".join(lines)


def synth_lines(rec: dict | None) -> list[str]:
    """The report's lines for ``synth.json`` (Vitis csynth/cosim latency beside the model), if any."""
    if rec is None:
        return ["No Vitis HLS results here (`make synth` needs vitis_hls on PATH)."]
    cs, co, model = rec["csynth_latency"], rec["cosim_latency"], rec.get("model_sequence_cycles_sparse") or {}
    return [f"Vitis HLS: csynth latency {cs['best']}..{cs['worst']} cycles, cosim {co['min']}..{co['max']} cycles "
            f"({co['status']}); model (SparseStateLSTM layers, sparse mode, test split): "
            f"{model.get('min')}..{model.get('max')} cycles per sequence. {rec['note']}."]


def weight_sparse_lines(emu: dict) -> list[str]:
    """The weight-sparse engine (issue 31) where a layer's weights let a column stream in KE < C cycles:
    modelled cycles against the dense engine, and its weight memory (values + row indices) against dense."""
    if "cycles_weight_sparse" not in emu:
        return []
    lines = ["", "Weight-sparse engine (columns of KE (value, row) pairs a lane; modelled):", "",
             "| layer | weight density | KE / C | cycles weight+state | vs dense | weight memory (values + rows) |",
             "|---|---|---|---|---|---|"]
    for name, la in emu["layers"].items():
        if "weight_chunks" not in la:
            continue
        bits = la["weight_memory_bits"]
        lines.append(f"| {name} | {la['weight_density']:.1%} | {la['weight_chunks']} / {4 * la['units'] // la['lanes']} | "
                     f"{la['cycles_weight_sparse']} | {la['cycles_dense'] / la['cycles_weight_sparse']:.2f}x | "
                     f"{bits['sparse'] / 1e6:.3f} / {bits['dense'] / 1e6:.3f} Mbit dense = {la['weight_memory_ratio']:.2f}x |")
    lines += ["", f"Total: {emu['cycles_dense']} / {emu['cycles_weight_sparse']} cycles = "
              f"**{emu['speedup_weight_sparse']:.2f}x** dense over weight+state sparse (ideal, nonzero weights of "
              f"nonzero columns only: {emu['ideal_speedup_weight_sparse']:.2f}x)."]
    return lines


def rtl_lines(rtl: dict | None) -> list[str]:
    """The report's RTL twin section: cycles measured in Verilator against the model, and the Yosys estimate."""
    if rtl is None:
        return ["No RTL simulation yet (`make rtl MODEL=...`)."]
    lines = [f"Generated Verilog (pipeline/rtl), Verilator, {rtl['vectors']} test vectors: outputs equal the emulator "
             "bit for bit and the clock cycles measured from start to done equal pipeline/accelerator.py on every "
             "step and sequence, in sparse mode, dense mode and on the dense-only engine.",
             "",
             "| layer | lanes | cycles dense (measured) | cycles sparse (measured) | speedup | model | Verilator steps/s "
             "(sparse / dense) | lint |",
             "|---|---|---|---|---|---|---|---|"]
    for la in rtl["layers"]:
        m = la["modes"]
        lint = "clean" if all(v == "clean" for v in la.get("lint", {}).values()) else "warnings"
        lines.append(f"| {la['layer']} | {la['lanes']} | {m['dense']['total_cycles']} | {m['sparse']['total_cycles']} | "
                     f"{la['speedup_dense_over_sparse']:.2f}x | equal ({m['sparse']['model_total_cycles']} sparse) | "
                     f"{m['sparse']['sim_steps_per_s']:,.0f} / {m['dense']['sim_steps_per_s']:,.0f} | {lint} |")
    for la in rtl["layers"]:
        m = la["modes"]
        if "weight_sparse" in m:
            ws, wd = m["weight_sparse"], m["weight_dense"]
            lines += ["", f"Weight-sparse engine of {la['layer']} (KE = {ws['weight_chunks']} pairs a column and lane; "
                      f"measured, == emulator, cycles == model): weight+state {ws['total_cycles']} cycles, weight only "
                      f"(every column) {wd['total_cycles']}; dense-only engine / weight+state = "
                      f"**{m['dense_only']['total_cycles'] / max(1, ws['total_cycles']):.2f}x**, state-only / "
                      f"weight+state = {m['sparse']['total_cycles'] / max(1, ws['total_cycles']):.2f}x."]
    res = rtl.get("resources")
    if not res:
        lines += ["", "Resources: not estimated (`hls.rtl_synth_lanes = 0`)."]
    elif "skipped" in res:
        lines += ["", f"Resources: SKIPPED: {res['skipped']}."]
    else:
        lines += ["", "Resources: Yosys `synth_xilinx` (pre-place-and-route estimate, no timing):", "",
                  "| layer | lanes | build | LUT | FF | CARRY | DSP48E2 | RAMB36 | RAMB18 | LUTRAM | Yosys s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in res.items():
            for build in ("sparse-capable", "dense-only"):
                b = r[build]
                q = b["resources"]
                lanes = f"{r['lanes']}" + ("" if r.get("full_design") else " (reduced)")
                lines.append(f"| {name} | {lanes} | {build} | {q.get('LUT', 0)} | {q.get('FF', 0)} | {q.get('CARRY', 0)} | "
                             f"{q.get('DSP48E2', 0)} | {q.get('RAMB36', 0)} | {q.get('RAMB18', 0)} | {q.get('LUTRAM', 0)} | "
                             f"{b['seconds']:.0f} |")
        for name, r in res.items():
            cost = r.get("skip_logic_cost") or {}
            dense_lut = r["dense-only"]["resources"].get("LUT", 0)
            if cost:
                lines += ["", f"What skipping zeros costs in area ({name}, sparse-capable minus dense-only): "
                          + ", ".join(f"{k} {v:+d}" for k, v in cost.items() if v)
                          + (f" (LUT {100 * cost.get('LUT', 0) / dense_lut:+.1f}%)" if dense_lut else "") + "."]
        if any(not r.get("full_design") for r in res.values()):
            lines += ["", "(reduced): the same layer (weights, types, schedule) built with fewer lanes than the "
                      "simulated design, so that Yosys fits the demo's time budget; the full design's estimate is "
                      "`hls.rtl_synth_lanes` = its lanes (minutes to tens of minutes)."]
    return lines


def dense_head_lines(project: Path) -> list[str]:
    """What the Dense layers after the SparseStateLSTMs cost (hls4ml's kernels, not the RTL twin's): their
    multipliers n_in x n_out / ReuseFactor, from the project's manifest."""
    path = Path(project) / "skiplstm_manifest.json"
    dense = json.loads(path.read_text()).get("dense_layers", []) if path.is_file() else []
    if not dense:
        return []
    parts = [f"{d['name']} ({d['n_in']} x {d['n_out']}, Strategy {d['strategy']}, ReuseFactor {d['reuse_factor']}): "
             f"{d['multipliers']} multipliers" for d in dense]
    return ["", "Dense head (hls4ml's own kernels; not in the RTL twin, not placed and routed): " + "; ".join(parts)
            + ". `hls.dense_reuse_factor` R > 1 builds it with Strategy Resource: about n_in x n_out / R multipliers, "
            "reused over about R cycles once a sequence."]


_PNR_BUILDS = ("sparse-capable", "dense-only", "weight-sparse")  # pnr.json's builds, in the report's order


def pnr_lines(pnr: dict | None, recipe_name: str = "<recipe>", fit: dict | None = None) -> list[str]:
    """The report's "Post-route timing" section from ``pnr.json``: both builds' Fmax, latency per sequence
    and per step, the time speedup beside the cycle speedup, utilisation and the critical paths; without
    it, whether each layer would fit (``rtl.json``'s ``ecp5_fit``) and how to run it."""
    if pnr is None:
        lines = [f"No place and route for this run: `make pnr MODEL={recipe_name}` synthesises, places and routes "
                 "each SparseStateLSTM on a Lattice ECP5 with open tools (Yosys, nextpnr-ecp5, ecppack) and writes "
                 "pnr.json and the bitstreams (`[fpga]` in the recipe: part, package, speed grade, clock, lanes)."]
        for name, f in (fit or {}).items():
            if f["fits"]:
                lines.append(f"- {name} at {f['lanes']} lanes fits ({f['estimate']['DP16KD']} DP16KD, "
                             f"{f['estimate']['MULT18X18D']} MULT18X18D).")
            else:
                lines.append(f"- {name}: {f['message']}. `make pnr MODEL=mnist_rows_fpga` places and routes a "
                             "layer that fits (H = 128, 16 lanes).")
        return lines
    lines = [f"{pnr['device']} ({pnr['package']}, speed grade {pnr['speed']}), target {pnr['freq_mhz']:g} MHz, "
             f"nextpnr seeds {pnr['seeds']}: {pnr['label']}. Time = cycles measured in Verilator on the very "
             "Verilog that was placed (its test vectors) / post-route Fmax; sparse mode runs on the sparse-capable "
             "build, dense on the dense-only build, each at its own clock.",
             "",
             "| layer | lanes | Fmax sparse-capable | Fmax dense-only | us / sequence sparse | us / sequence dense | "
             "us / step sparse / dense | speedup in time | in cycles |",
             "|---|---|---|---|---|---|---|---|---|"]
    for la in pnr["layers"]:
        f, lat = la["fmax_mhz"], la["latency"]
        lanes = f"{la['lanes']}" + ("" if la.get("full_design") else " (reduced)")
        if "refused" in la:
            lines.append(f"| {la['layer']} | {lanes} | not placed | not placed | | | | | |")
            continue
        lines.append(f"| {la['layer']} | {lanes} | {f['sparse-capable']:.1f} MHz | {f['dense-only']:.1f} MHz | "
                     f"{lat['sparse_us_per_sequence']:.2f} | {lat['dense_us_per_sequence']:.2f} | "
                     f"{lat['sparse_us_per_step']:.3f} / {lat['dense_us_per_step']:.3f} | **{lat['time_speedup']:.2f}x** | "
                     f"{lat['cycle_speedup']:.2f}x |")
    ws = [la for la in pnr["layers"] if "weight-sparse" in la["fmax_mhz"]]
    if ws:
        lines += ["", "Weight-sparse engine (weight + state sparse mode, KE (value, row) pairs a column and lane), "
                  "against the dense-only build in dense mode:", "",
                  "| layer | KE | Fmax | us / sequence | us / step | speedup in time | in cycles |", "|---|---|---|---|---|---|---|"]
        for la in ws:
            lat = la["latency"]
            t = (f"**{lat['weight_sparse_time_speedup']:.2f}x**" if "weight_sparse_time_speedup" in lat
                 else "dense-only not placed")
            lines.append(f"| {la['layer']} | {la['weight_sparse']['weight_chunks']} | {la['fmax_mhz']['weight-sparse']:.1f} MHz | "
                         f"{lat['weight_sparse_us_per_sequence']:.2f} | {lat['weight_sparse_us_per_step']:.3f} | "
                         f"{t} | {lat['weight_sparse_cycle_speedup']:.2f}x |")
        for la in ws:
            if "refused" in la:
                lines += ["", f"{la['layer']}: the dense-weight builds were simulated (their cycles are the speedups' "
                          f"reference) but not placed: {la['refused']['dense-only']}."]
    lines += ["", "| layer | build | LUT4 sites (COMB) | FF | LUT RAM (DPR16X4) | DP16KD | MULT18X18D | IO | critical path |",
              "|---|---|---|---|---|---|---|---|---|"]
    for la in pnr["layers"]:
        for build in [b for b in _PNR_BUILDS if b in la["builds"]]:
            b = la["builds"][build]["best"]
            u = b["utilisation"]

            def used(kind, u=u):
                return f"{u[kind]['used']} / {u[kind]['available']}" if kind in u else "0"

            cp = b["critical_path"] or {}
            path = (f"`{cp.get('from', '?')}` -> `{cp.get('to', '?')}`, {cp.get('logic_ns', 0):.2f} ns logic + "
                    f"{cp.get('routing_ns', 0):.2f} ns routing") if cp else "n/a"
            lines.append(f"| {la['layer']} | {build} | {used('TRELLIS_COMB')} | {used('TRELLIS_FF')} | "
                         f"{b['synthesis'].get('TRELLIS_DPR16X4', 0)} | {used('DP16KD')} | {used('MULT18X18D')} | "
                         f"{used('TRELLIS_IO')} | {path} |")
    lines += ["", "Bitstreams: " + ", ".join(f"`{la['builds'][b]['best']['bitstream']}`" for la in pnr["layers"]
                                             for b in _PNR_BUILDS if b in la["builds"]) + "."]
    return lines


def weight_memory_lines(project: Path) -> list[str]:
    """The weights the accelerator stores (`pipeline.results.weight_memory`: entries x type width, per tensor)."""
    if not (Path(project) / "skiplstm_ir.json").is_file():
        return []
    from pipeline.results import weight_memory

    mem = weight_memory(Path(project))
    types = ", ".join(f"{k} `{v}`" for k, v in mem["types"].items())
    return ["", f"Weight memory: {mem['bits']:,} bits ({mem['bits'] / 1e6:.2f} Mbit; {mem['count']:,} weights, "
            f"{mem['bits'] / (16 * mem['count']):.0%} of 16-bit; SparseStateLSTM layers {mem['lstm_bits']:,} bits): {types}."]


def write_report(recipe, outdir: Path, project: Path) -> Path:
    train = _load(outdir / "train_metrics.json")
    emu = _load(outdir / "emulate.json")
    cs = _load(outdir / "csim.json")
    plot_cycles(emu, outdir / "cycles.png")
    plot_training(train, outdir / "training.png")
    m = emu["fixed"]["metric"]
    q = recipe.quant
    precision = emu["precision"]
    if q.enabled:
        precision = (f"quantisation-aware: weights {q.weight or 'ap_fixed<16,6>'}, state "
                     f"{q.state or 'ap_fixed<16,2,AP_RND,AP_SAT>'}")
    err = emu["max_abs_err_vs_float"]
    exact = (" Keras computes what the accelerator computes (quantisation-aware layers, `[quant]`): the fixed-point "
             "outputs equal Keras `predict` bit for bit." if q.enabled and err == 0 else
             " The layers were trained quantised, yet the outputs differ: a bug (the tests hold them equal)."
             if q.enabled else "")
    lines = [
        f"# SkipLSTM report: {recipe.name} (seed {recipe.seed})",
        "",
        "**Headline:** state sparsity "
        + ", ".join(f"{k} {v['state_sparsity']:.1%}" for k, v in emu["layers"].items())
        + f"; {m} {'Keras' if q.enabled else 'float'} {emu['float']['value']:.4f}, fixed point ({precision}) "
        f"{emu['fixed']['value']:.4f};"
        f" accelerator speedup sparse vs dense {emu['speedup']:.2f}x in modelled cycles (ideal MAC bound"
        f" {emu['ideal_speedup']:.2f}x),"
        f" modelled energy ratio {emu['energy_ratio_model']:.2f}x.",
        "",
        "## Verification",
        f"- C-simulation ({cs['vectors']} test vectors, g++): "
        + "; ".join(f"{k}: {v}" for k, v in cs["checks"].items()),
        f"- cycles counted in C-simulation (every loop iteration and pipeline drain, start to done) dense/sparse: "
        f"{cs['cycles_dense']}/{cs['cycles_sparse']} = {cs['speedup']:.2f}x, equal to the model per step and per "
        "sequence" + (" (the project's weight-sparse engine: dense mode streams every column in KE cycles)"
                      if cs.get("engine") == "weight-sparse" else ""),
        "",
        f"## Accuracy ({emu['split']} split, {emu['n']} sequences)",
        "| | float (Keras) | fixed point (emulator) |",
        "|---|---|---|",
        f"| {m} | {emu['float']['value']:.4f} | {emu['fixed']['value']:.4f} |",
        "",
        f"Max / mean abs error of the outputs vs Keras: {err:.4g} / {emu['mean_abs_err_vs_float']:.4g}.{exact}",
        *weight_memory_lines(project),
        "",
        "## Accelerator (emulator, whole split; cycles modelled by pipeline/accelerator.py)",
        "| layer | n_in | units | lanes | state sparsity | cycles dense | cycles sparse | speedup |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, la in emu["layers"].items():
        n_in = f"{la['n_in']} (token ids, folded embedding)" if la.get("token_input") else la["n_in"]
        lines.append(f"| {name} | {n_in} | {la['units']} | {la['lanes']} | {la['state_sparsity']:.1%} | "
                     f"{la['cycles_dense']} | {la['cycles_sparse']} | {la['cycles_dense'] / la['cycles_sparse']:.2f}x |")
    lines += [
        "",
        f"Total: {emu['cycles_dense']} / {emu['cycles_sparse']} cycles = **{emu['speedup']:.2f}x**; MACs "
        f"{emu['macs_dense']} / {emu['macs_sparse']}; energy ratio {emu['energy_ratio_model']:.2f}x "
        "(model: pipeline/accelerator.py, Horowitz ISSCC 2014 per-operation energies).",
        *([f"With `hls.fold_embedding = true` (bit-identical outputs): {emu['folded_embedding']['cycles_dense']} / "
           f"{emu['folded_embedding']['cycles_sparse']} cycles = **{emu['folded_embedding']['speedup']:.2f}x** "
           f"(ideal {emu['folded_embedding']['ideal_speedup']:.2f}x)."] if "folded_embedding" in emu else []),
        *weight_sparse_lines(emu),
        "",
        *dense_head_lines(project),
        "",
        "![cycles per step](cycles.png)",
        "",
        "![training](training.png)",
        "",
        "## RTL twin (cycles measured in RTL simulation)",
        *rtl_lines(_load(outdir / "rtl.json") if (outdir / "rtl.json").is_file() else None),
        "",
        "## Post-route timing (ECP5, open tools)",
        *pnr_lines(_load(outdir / "pnr.json") if (outdir / "pnr.json").is_file() else None, recipe.name,
                   (_load(outdir / "rtl.json").get("ecp5_fit") if (outdir / "rtl.json").is_file() else None)),
        "",
        "## Overflow (saturations/wraps counted per tensor)",
        overflow_section(emu),
        *(["", "The layers trained quantisation-aware with these types (`[quant]`): each saturation above is in "
           "Keras's outputs too; a wider type means retraining with it."] if q.enabled and emu.get("overflow") else []),
        "",
        "## Generated project",
        f"`{project}` — synthesize with Vitis HLS: `cd {project} && vitis_hls -f build_prj.tcl "
        f"\"{synth.COMMAND}\"` (or `make synth MODEL=" + recipe.name + f" SEED={recipe.seed}`).",
        *synth_lines(_load(outdir / "synth.json") if (outdir / "synth.json").is_file() else None),
        "",
    ]
    path = outdir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
