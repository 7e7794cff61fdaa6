"""Verilog of one SparseStateLSTM layer: the engine, its streaming top, its ROMs and a Verilator harness.

`generate_layer(spec, out_dir)` renders ``templates/rtl/*.j2`` for a `LayerSpec` into ``out_dir``:

    <module>.v                the engine: control, column picker, weight ROM addressing (Verilog-2005:
                              Verilator and Yosys 0.23 read it)
    <module>_lane.v           one lane: multiplier, accumulator banks, gate pipeline, LUT copies, c/h banks
    <module>_axis.v           the AXI4-Stream top: sequence buffer, engine, output buffer (what P&R places)
    <module>_roms.v           the weight and LUT ROMs: behavioural ($readmemh), or ECP5 DP16KD tiles with
                              their output register under SKIPLSTM_ECP5 (pipeline.rtl.memories)
    skiplstm_fixed_cast.v     ap_fixed casts (quantisation + overflow); skiplstm_mul.v (pipelined
                              multiplier; skiplstm_ecp5_mult18.v its ECP5 MULT18X18D), skiplstm_ram.v
                              (buffers), skiplstm_priority_pick.v
    skiplstm_ecp5_models.v    Verilator models of MULT18X18D and DP16KD (simulation only, never synthesised)
    <module>_kernel.hex       weight ROMs: word j*C + chunk = W[j][chunk*P .. chunk*P+P), lane 0 low
    <module>_recurrent.hex
    <module>_bias.hex         word it = bias[g*H + it*P + lane] at position g*P + lane (g = gate i, f, c, o)
    <module>_sigmoid.hex, <module>_tanh.hex   LUTs (one copy per lane is instantiated)
    <module>_tb.v, <module>_tb_main.cpp       Verilator harness (pipeline.rtl.sim)
    manifest.json             sizes, widths, files, the cycle-model constants, the stream format

``$readmemh`` names are relative: run the simulator and Yosys inside ``out_dir``. Every width, shift
and cast parameter is computed here from the emulator's FixedTypes; the templates hold the structure.
Generation is deterministic (same layer -> same bytes).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from pipeline import accelerator
from pipeline.fixed import FixedType
from pipeline.rtl.memories import rom_module
from pipeline.rtl.spec import LayerSpec, container_width, o_code, q_code

STATIC_SOURCES = ("skiplstm_fixed_cast.v", "skiplstm_priority_pick.v", "skiplstm_mul.v", "skiplstm_ecp5_mult18.v",
                  "skiplstm_ram.v", "skiplstm_axis_slice.v")
SIM_MODELS = "skiplstm_ecp5_models.v"  # Verilator only: the ECP5 primitives the SKIPLSTM_ECP5 variant instantiates
STREAM_MAX_BITS = 64  # widest AXI4-Stream tdata of the streaming top
LUT_RAM_MAX_DEPTH = 64  # buffers up to this many words are LUT RAM, deeper ones block RAM


def template_dir():
    return resources.files("pipeline.templates") / "rtl"


@cache
def _env():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False, trim_blocks=True, lstrip_blocks=True)


# ------------------------------------------------------------------------------ Verilog expression helpers
def index_bits(n: int) -> int:
    """Bits of an index 0..n-1 (at least 1)."""
    return max(1, (int(n) - 1).bit_length())


def sext(sig: str, width: int, to: int) -> str:
    """``sig`` (``width`` bits, two's complement) sign-extended to ``to`` bits."""
    if to < width:
        raise ValueError(f"cannot sign-extend {sig} from {width} to {to} bits")
    if to == width:
        return sig
    return "{{" + f"{to - width}" + "{" + f"{sig}[{width - 1}]" + "}}, " + sig + "}"


def zfit(sig: str, width: int, to: int) -> str:
    """``sig`` (unsigned) zero-extended or truncated to ``to`` bits."""
    if to > width:
        return "{" + f"{to - width}'d0, {sig}" + "}"
    if to < width:
        return f"{sig}[{to - 1}:0]"
    return sig


def align(sig: str, width: int, frac: int, to_frac: int, to: int) -> str:
    """``sig`` (``width`` bits, ``frac`` fractional bits) moved exactly onto a grid of ``to_frac``
    fractional bits (a left shift) and sign-extended to ``to`` bits."""
    shift = to_frac - frac
    if shift < 0 or to < width + shift:
        raise ValueError(f"cannot align {sig} ({width} bits, F={frac}) to F={to_frac} in {to} bits")
    head = "" if to == width + shift else "{" + f"{to - width - shift}" + "{" + f"{sig}[{width - 1}]" + "}}, "
    tail = f", {shift}'d0" if shift else ""
    return "{" + head + sig + tail + "}"


def lit(width: int, value: int) -> str:
    """A ``width``-bit literal holding ``value`` in two's complement."""
    return f"{width}'h{int(value) & ((1 << width) - 1):x}"


def cast_params(in_w: int, in_f: int, t: FixedType) -> dict:
    return {"IN_W": in_w, "IN_F": in_f, "OUT_W": t.width, "OUT_F": t.frac, "OUT_SIGNED": int(t.signed),
            "Q_MODE": q_code(t), "O_MODE": o_code(t), "q": t.q_mode, "o": t.o_mode, "type": t.cpp()}


def cast(inst: str, p: dict, din: str, dout: str) -> str:
    """An instance of skiplstm_fixed_cast: ``dout = (type) din``."""
    return (f"skiplstm_fixed_cast #(.IN_W({p['IN_W']}), .IN_F({p['IN_F']}), .OUT_W({p['OUT_W']}), "
            f".OUT_F({p['OUT_F']}), .OUT_SIGNED({p['OUT_SIGNED']}), .Q_MODE({p['Q_MODE']} /* {p['q']} */), "
            f".O_MODE({p['O_MODE']} /* {p['o']} */)) {inst} (.din({din}), .dout({dout}));  // {p['type']}")


# ------------------------------------------------------------------------------ the numbers
def stream_values_per_beat(values: int, width: int, what: str) -> int:
    """Values a beat of the streaming top: the largest divisor of ``values`` (a buffer word's values)
    whose beat fits ``STREAM_MAX_BITS`` of tdata, so that no beat straddles two words."""
    if width > STREAM_MAX_BITS:
        raise ValueError(f"{what}s are {width} bits: the streaming top carries at most {STREAM_MAX_BITS}-bit tdata "
                         "(narrow the type)")
    return max(d for d in range(1, values + 1) if values % d == 0 and d * width <= STREAM_MAX_BITS)


def rtl_params(spec: LayerSpec) -> dict:
    """Every size, width, shift and cast parameter of the engine (the template context, less files)."""
    shape = spec.shape
    h, p, n_in, steps = spec.units, spec.lanes, spec.n_in, spec.steps
    c, u, xs = shape.col_cycles, shape.unit_iters, shape.scan_iters
    g_sparse = shape.gate_iters(True)
    cw = container_width
    xw, kw, rw, bw = cw(spec.input_t), cw(spec.kernel_t), cw(spec.recurrent_t), cw(spec.bias_t)
    aw, cellw, tw, hw = cw(spec.accum_t), cw(spec.cell_t), cw(spec.table_t), cw(spec.result_t)
    fx, fw, fwr, fh = spec.input_t.frac, spec.kernel_t.frac, spec.recurrent_t.frac, spec.result_t.frac
    fa, fc, ft, fb = spec.accum_t.frac, spec.cell_t.frac, spec.table_t.frac, spec.bias_t.frac
    token = spec.token_input
    oa = hw if token else max(xw, hw)  # multiplier operand: x_t[j] or h_{t-1}[j]
    ob = max(kw, rw)  # multiplier operand: kernel or recurrent weight
    pw = oa + ob
    fpx = fw if token else fx + fw  # the x column's addend: the folded row (F = fw) or x * W
    fph = fwr + fh
    x_src = (ob, fpx) if token else (pw, fpx)
    fp = max(fpx, fph)
    paw = max(w + fp - f for w, f in (x_src, (pw, fph)))
    fs = max(fa, fp)
    sw = max(aw + fs - fa, paw + fs - fp) + 1
    fcs = max(ft + fc, 2 * ft)
    csw = max(tw + cellw + fcs - (ft + fc), 2 * tw + fcs - 2 * ft) + 1
    tbits = spec.table_bits
    ws = shape.weight_sparse
    ck = shape.stream_chunks  # ROM words (chunks) a column: C, or KE on the weight-sparse engine
    kdepth, rdepth = n_in * ck, h * ck
    iw = 2 + index_bits(u) if ws else 0  # a pair's row: gate (2 bits) and unit word
    xdepth = steps if token else steps * xs
    xsw = index_bits(xs) if not token else 1
    uw = index_bits(u)
    nxw = 1 if token else xs  # x words of the picker's mask (token input: one, the row of v_t)
    nw = nxw + u
    # cnt holds 0 .. G + max(GATE_DEPTH, INIT_DEPTH) - 1 (and U, XS, PICK_DEPTH, MAC_DEPTH)
    cntw = (g_sparse + max(accelerator.GATE_DEPTH, accelerator.INIT_DEPTH)).bit_length()
    xl = 1 if token else p
    in_vpb, out_vpb = stream_values_per_beat(xl, xw, f"{spec.name}: input value"), stream_values_per_beat(p, hw, f"{spec.name}: h_t value")
    t_out = steps if spec.return_sequences else 1
    odepth = t_out * u
    return dict(
        N_IN=n_in, H=h, P=p, T=steps, C=c, U=u, XS=xs, G_SPARSE=g_sparse, XL=xl,
        TOKEN=int(token), RETSEQ=int(spec.return_sequences), PRUNE_OG=int(spec.prune == "output_gate"),
        PRUNE_LAST=int(spec.prune_last), prune=spec.prune, THR=spec.thr_raw,
        MAC_DEPTH=accelerator.MAC_DEPTH, GATE_DEPTH=accelerator.GATE_DEPTH, PICK_DEPTH=accelerator.PICK_DEPTH,
        STW=accelerator.WEIGHT_LATENCY, STR=accelerator.ACC_READ_STAGE, STWR=accelerator.ACC_WRITE_STAGE,
        MUL_LATENCY=accelerator.MUL_LATENCY,
        INIT_DEPTH=accelerator.INIT_DEPTH, X_LATENCY=accelerator.X_LATENCY,
        XW=xw, KW=kw, RW=rw, BW=bw, AW=aw, CW=cellw, TW=tw, HW=hw, TBITS=tbits, TSIZE=1 << tbits,
        OA=oa, OB=ob, PW=pw, PAW=paw, SW=sw, FPX=fpx, FPH=fph, FW=fw, FP=fp, FA=fa, FS=fs,
        FT=ft, FC_=fc, FCS=fcs, CSW=csw,
        TWID=index_bits(steps), CNTW=cntw, UW=uw, XSW=xsw, LW=index_bits(p), PWW=uw if token else max(xsw, uw),
        NXW=nxw, NW=nw, NWW=index_bits(nw), NXWW=index_bits(nxw), XLAST_LANE=0 if token else (n_in - 1) % p,
        WS=int(ws), CK=ck, IW=iw, KLW=kw + iw, RLW=rw + iw,
        CCW=index_bits(ck), KDEPTH=kdepth, RDEPTH=rdepth, KADW=index_bits(kdepth), RADW=index_bits(rdepth),
        AWID=max(index_bits(kdepth), index_bits(rdepth)), XDEPTH=xdepth, XADW=index_bits(xdepth),
        XSTEP=1 if token else xs, XPW=1 if token else xs * p,
        X_VALID=format(1 if token else (1 << n_in) - 1, "x"),
        IN_VPB=in_vpb, IN_BPW=xl // in_vpb, IN_DW=in_vpb * xw, IBW=index_bits(xl // in_vpb),
        OUT_VPB=out_vpb, OUT_BPW=p // out_vpb, OUT_DW=out_vpb * hw, OBW=index_bits(p // out_vpb),
        ODEPTH=odepth, OADW=index_bits(odepth), X_BLOCK=int(xdepth > LUT_RAM_MAX_DEPTH),
        O_BLOCK=int(odepth > LUT_RAM_MAX_DEPTH),
        casts={
            "bias": cast_params(bw, fb, spec.accum_t),
            "mac": cast_params(sw, fs, spec.accum_t),
            "sig_idx": cast_params(aw, fa, spec.sig_index_t),
            "tanh_idx": cast_params(aw, fa, spec.tanh_index_t),
            "cell": cast_params(csw, fcs, spec.cell_t),
            "tanh_idx_c": cast_params(cellw, fc, spec.tanh_index_t),
            "result": cast_params(2 * tw, 2 * ft, spec.result_t),
        },
    )


# ------------------------------------------------------------------------------ ROM images
def pack_words(values: np.ndarray, width: int) -> list[str]:
    """Rows of ``values`` (n_words, lanes) as hex words of lanes x ``width`` bits, lane 0 lowest."""
    values = np.asarray(values, np.int64)
    lanes = values.shape[1]
    digits = -(-lanes * width // 4)
    mask = (1 << width) - 1
    out = []
    for row in values.tolist():
        word = 0
        for lane, v in enumerate(row):
            word |= (v & mask) << (lane * width)
        out.append(format(word, f"0{digits}x"))
    return out


def weight_words(matrix: np.ndarray, lanes: int) -> np.ndarray:
    """(n_cols, 4H) -> (n_cols * C, P): ROM word j*C + chunk = W[j][chunk*P .. chunk*P+P)."""
    n_cols, gates = matrix.shape
    return np.asarray(matrix, np.int64).reshape(n_cols * (gates // lanes), lanes)


def sparse_weight_words(matrix: np.ndarray, lanes: int, chunks: int, value_bits: int) -> np.ndarray:
    """(n_cols, 4H) -> (n_cols * KE, P) words of the weight-sparse engine: word j*KE + k holds, per lane p,
    pair k of the lane's share of column j (`pipeline.accelerator.weight_pairs`: the k-th nonzero, rows
    ascending, zero-padded) as ``value | row << value_bits``, row = (gate << UW) | unit word."""
    values, rows = accelerator.weight_pairs(np.asarray(matrix, np.int64), lanes, chunks)
    words = (values & ((1 << value_bits) - 1)) | (rows << value_bits)
    return words.reshape(-1, lanes)


def bias_words(bias: np.ndarray, units: int, lanes: int) -> np.ndarray:
    """(4H,) -> (U, 4P): word it holds bias[g*H + it*P + lane] at position g*P + lane."""
    u = units // lanes
    return np.asarray(bias, np.int64).reshape(4, u, lanes).transpose(1, 0, 2).reshape(u, 4 * lanes)


# ------------------------------------------------------------------------------ generation
@dataclass
class RtlLayer:
    """A generated layer: where its files are and the numbers they were built from."""

    spec: LayerSpec
    directory: Path
    params: dict
    files: dict[str, str] = field(default_factory=dict)  # role -> file name inside directory

    @property
    def module(self) -> str:
        return self.spec.module

    def sources(self, ecp5: bool = False) -> list[Path]:
        """The synthesisable sources, leaves first (the streaming top last); ``ecp5``: the ROMs as DP16KD
        grids (`<m>_roms_ecp5.v`, for a SKIPLSTM_ECP5 build) instead of the behavioural `<m>_roms.v`."""
        roms = self.files["roms_ecp5" if ecp5 else "roms"]
        return [self.directory / f for f in (*STATIC_SOURCES, roms, self.files["lane"],
                                             self.files["engine"], self.files["axis"])]

    @property
    def top(self) -> str:
        """The streaming top's module name (what place and route builds)."""
        return f"{self.module}_axis"

    def testbench(self) -> list[Path]:
        return [self.directory / self.files["tb"], self.directory / self.files["tb_main"]]

    def sim_models(self) -> Path:
        """Verilator models of the ECP5 primitives (for a SKIPLSTM_ECP5 simulation only)."""
        return self.directory / SIM_MODELS


def generate_layer(spec: LayerSpec, out_dir: str | Path) -> RtlLayer:
    """Write the engine of ``spec`` and everything it reads into ``out_dir`` (created; files replaced)."""
    spec.check()
    out = Path(out_dir).resolve()  # builds and runs change directory: every path absolute
    out.mkdir(parents=True, exist_ok=True)
    m = spec.module
    params = rtl_params(spec)
    files = {"engine": f"{m}.v", "lane": f"{m}_lane.v", "axis": f"{m}_axis.v", "roms": f"{m}_roms.v",
             "roms_ecp5": f"{m}_roms_ecp5.v",
             "tb": f"{m}_tb.v", "tb_main": f"{m}_tb_main.cpp",
             "kernel": f"{m}_kernel.hex", "recurrent": f"{m}_recurrent.hex", "bias": f"{m}_bias.hex",
             "sigmoid": f"{m}_sigmoid.hex", "tanh": f"{m}_tanh.hex"}
    p = spec.lanes
    if params["WS"]:
        weights = {"kernel": (sparse_weight_words(spec.kernel, p, params["CK"], params["KW"]), params["KLW"]),
                   "recurrent": (sparse_weight_words(spec.recurrent, p, params["CK"], params["RW"]),
                                 params["RLW"])}
    else:
        weights = {"kernel": (weight_words(spec.kernel, p), params["KW"]),
                   "recurrent": (weight_words(spec.recurrent, p), params["RW"])}
    images = {
        **weights,
        "bias": (bias_words(spec.bias, spec.units, p), params["BW"]),
        "sigmoid": (spec.sigmoid.reshape(-1, 1), params["TW"]),
        "tanh": (spec.tanh.reshape(-1, 1), params["TW"]),
    }
    words = {}
    for role, (values, width) in images.items():
        words[role] = pack_words(values, width)
        (out / files[role]).write_text("\n".join(words[role]) + "\n", encoding="ascii")
    rom_roles = (("kernel", False), ("recurrent", False), ("sigmoid", True), ("tanh", True))
    rom_words = {role: [int(w, 16) for w in words[role]] for role, _ in rom_roles}  # parsed once, both variants
    for key, ecp5 in (("roms", False), ("roms_ecp5", True)):
        roms = [rom_module(f"{m}_rom_{role}", rom_words[role], images[role][1] * images[role][0].shape[1],
                           len(rom_words[role]), files[role], dual=dual, extra_reg=not dual, ecp5=ecp5)
                for role, dual in rom_roles]
        (out / files[key]).write_text("\n".join(roms), encoding="utf-8")
    context = dict(params, module=m, layer=spec.name,
                   types=[(k, t.cpp()) for k, t in spec.types().items()],
                   bias_hex=files["bias"], sext=sext, zext=zfit, zfit=zfit, align=align, lit=lit, cast=cast)
    env = _env()
    for role, template in (("engine", "sparse_lstm.v.j2"), ("lane", "sparse_lstm_lane.v.j2"),
                           ("axis", "sparse_lstm_axis.v.j2"), ("tb", "sparse_lstm_tb.v.j2"),
                           ("tb_main", "tb_main.cpp.j2")):
        (out / files[role]).write_text(env.get_template(template).render(**context), encoding="utf-8")
    for name in (*STATIC_SOURCES, SIM_MODELS):
        shutil.copyfile(str(template_dir() / name), out / name)
    manifest = {"layer": spec.name, "module": m, "top": f"{m}_axis", "files": files,
                "static_sources": list(STATIC_SOURCES), "sim_models": SIM_MODELS,
                "stream": {"in_values_per_beat": params["IN_VPB"], "in_tdata_bits": params["IN_DW"],
                           "in_beats": params["XDEPTH"] * params["IN_BPW"], "out_values_per_beat": params["OUT_VPB"],
                           "out_tdata_bits": params["OUT_DW"], "out_beats": params["ODEPTH"] * params["OUT_BPW"]},
                "params": {k: v for k, v in params.items() if k != "casts"}, "casts": params["casts"],
                "types": {k: t.cpp() for k, t in spec.types().items()},
                "weight_memory_bits": accelerator.weight_memory_bits(spec.shape, (params["KW"], params["RW"]))}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return RtlLayer(spec, out, params, files)
