"""``make synth``: Vitis HLS C synthesis and C/RTL co-simulation of a generated project, where the tool exists.

This machine (and CI) has no Vitis HLS: `run` then stops with a clear message naming the command to run
elsewhere. Everything after the tool is tested here on report files in Vitis' own format: hls4ml's
parser (`hls4ml.report.parse_vivado_report`) reads ``<project>_prj/solution1/syn/report/*_csynth.xml``
and ``sim/report/*_cosim.rpt``, and `latency_beside_model` puts the csynth and cosim latencies beside
the modelled cycles of the same design (``emulate.json``: per sequence, sparse mode, summed over the
SparseStateLSTM layers). The two do not cover the same thing: csynth/cosim count the whole top function
(the Dense layers and the dataflow hand-over too), the model the SparseStateLSTM layers only; csynth's
latency of a data-dependent loop comes from its LOOP_TRIPCOUNT (min/avg/max), cosim's from the test
vectors in ``tb_data/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

from pipeline.util import atomic_write_text, stage

COMMAND = "reset=1 synth=1 csim=1 cosim=1 export=0"


def vitis_tool() -> str | None:
    return shutil.which("vitis_hls") or shutil.which("vivado_hls")


def read_reports(project: str | Path) -> dict:
    """``{"csynth": {...}, "cosim": {...}}`` from the project's Vitis reports (empty dicts when absent)."""
    from hls4ml.report import parse_vivado_report

    with contextlib.redirect_stdout(io.StringIO()):  # hls4ml prints "report not found" lines
        report = parse_vivado_report(str(project)) or {}
    return {"csynth": report.get("CSynthesisReport", {}), "cosim": report.get("CosimReport", {})}


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def latency_beside_model(reports: dict, emulate: dict) -> dict:
    """csynth best/worst and cosim min/max latency (cycles) beside the model's per-sequence cycles."""
    cs, co = reports.get("csynth", {}), reports.get("cosim", {})
    return {
        "csynth_latency": {"best": _int(cs.get("BestLatency")), "worst": _int(cs.get("WorstLatency")),
                           "interval_min": _int(cs.get("IntervalMin")), "interval_max": _int(cs.get("IntervalMax"))},
        "cosim_latency": {"min": _int(co.get("LatencyMin")), "max": _int(co.get("LatencyMax")),
                          "status": co.get("Status")},
        "model_sequence_cycles_sparse": emulate.get("sequence_cycles", {}).get("sparse"),
        "note": "csynth/cosim: the whole top function (Dense layers, dataflow hand-over included); model: the "
                "SparseStateLSTM layers only, start to done (pipeline/accelerator.py)",
    }


def run(recipe, out="out", root="hls_project", seed: int | None = None) -> dict:
    """Run C synthesis + co-simulation of ``<root>/<recipe>/seed<N>/`` and write
    ``<out>/<recipe>/seed<N>/synth.json`` (``recipe``: a `pipeline.recipes.Recipe`, a name or a path)."""
    from pipeline.recipes import as_recipe, run_dir
    from pipeline.records import project_dir

    recipe = as_recipe(recipe, seed)
    project = project_dir(recipe, root)
    if not (project / "build_prj.tcl").is_file():
        raise FileNotFoundError(f"{project}/build_prj.tcl not found: run the hls stage first")
    tool = vitis_tool()
    if tool is None:
        raise RuntimeError(
            "synthesis needs AMD Vitis HLS (vitis_hls on PATH), which this machine does not have; "
            f"the project in {project} is ready: cd {project} && vitis_hls -f build_prj.tcl \"{COMMAND}\""
        )
    stage(f"synth: {recipe.name} seed {recipe.seed}: {tool} -f build_prj.tcl \"{COMMAND}\"")
    subprocess.run([tool, "-f", "build_prj.tcl", COMMAND], cwd=project, check=True)
    emu_path = run_dir(recipe, out) / "emulate.json"
    emulate = json.loads(emu_path.read_text()) if emu_path.is_file() else {}
    record = latency_beside_model(read_reports(project), emulate)
    atomic_write_text(run_dir(recipe, out) / "synth.json", json.dumps(record, indent=2, sort_keys=True))
    return record
