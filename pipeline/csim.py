"""C-simulation harness: build a generated project with g++ and run test vectors in both modes.

The build is ``g++ -std=c++14 -O2`` (not hls4ml's c++23, which floods warnings from ap_private.h),
cached by a content hash of every source and header of the project. The driver
(``skiplstm_csim.cpp``) runs each sample in sparse mode (as configured) and forced dense mode and
prints the outputs as exact doubles plus, per SparseStateLSTM step, the counted cycles.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.util import sha256_files

CXXFLAGS = ["-std=c++14", "-O2", "-Wall", "-Wno-unknown-pragmas", "-Wno-unused-label"]


class CompileError(RuntimeError):
    """g++ failed; the message holds the first compiler messages."""


@dataclass
class CsimResult:
    """Outputs (N, out_size) float64 and per-step records for both modes."""

    sparse: np.ndarray
    dense: np.ndarray
    steps: dict[str, np.ndarray]  # mode -> int array (rows: sample, layer, step, nnz_x, nnz_h, cols_x, cols_h, cycles)

    def layer_steps(self, mode: str, layer_id: int) -> np.ndarray:
        s = self.steps[mode]
        return s[s[:, 1] == layer_id]


def _sources(project: Path) -> list[Path]:
    files = sorted(p for p in (project / "firmware").rglob("*") if p.is_file() and p.suffix in (".h", ".cpp", ".txt"))
    return files + [project / "skiplstm_csim.cpp"]


def build(project: str | Path) -> Path:
    """Compile (or reuse) ``<project>/skiplstm_csim``; raise `CompileError` with the first messages."""
    project = Path(project).resolve()
    if not (project / "skiplstm_csim.cpp").is_file():
        raise FileNotFoundError(f"{project} is not a SkipLSTM project (no skiplstm_csim.cpp); run the hls stage first")
    gxx = shutil.which(os.environ.get("CXX", "g++"))
    if gxx is None:
        raise FileNotFoundError("g++ not found on PATH: the C-simulation needs a C++14 compiler (apt-get install g++)")
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    digest = sha256_files(_sources(project), extra=" ".join(CXXFLAGS))
    exe = project / "skiplstm_csim"
    stamp = project / ".skiplstm_csim.sha256"
    if exe.exists() and stamp.exists() and stamp.read_text() == digest:
        return exe
    weights = project / "firmware" / "weights"
    common = [gxx, *CXXFLAGS, "-isystem", str(project / "firmware" / "ap_types"), "-I", str(project),
              "-I", str(project / "firmware"), f'-DWEIGHTS_DIR="{weights}"']
    with tempfile.TemporaryDirectory(prefix="skiplstm_build_") as tmp:
        # One translation unit: ap_types and the nnet headers are parsed once (the build is dominated
        # by their template instantiation), which makes it faster than two parallel TUs on 2 cores.
        unity = Path(tmp) / "skiplstm_unity.cpp"
        unity.write_text(
            f'#include "{project / "firmware" / (manifest["project"] + ".cpp")}"\n'
            f'#include "{project / "skiplstm_csim.cpp"}"\n'
        )
        res = subprocess.run([*common, str(unity), "-o", str(exe) + ".tmp"], capture_output=True, text=True)
        if res.returncode != 0:
            first = "\n".join(line for line in res.stderr.splitlines() if "error" in line)[:3000]
            raise CompileError(f"g++ failed on {project}:\n{first or res.stderr[:3000]}")
    os.replace(str(exe) + ".tmp", exe)
    stamp.write_text(digest)
    warnings = [line for line in res.stderr.splitlines() if "warning:" in line]
    (project / "skiplstm_build_warnings.txt").write_text("\n".join(warnings) + ("\n" if warnings else ""))
    return exe


def run(project: str | Path, x: np.ndarray, timeout: float = 600) -> CsimResult:
    """Run inputs ``x`` (N, ...) through the compiled project in both modes."""
    project = Path(project).resolve()
    exe = build(project)
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"csim inputs must be a non-empty batch, got shape {x.shape}")
    flat = x.reshape(x.shape[0], -1)
    if flat.shape[1] != manifest["in_size"]:
        raise ValueError(f"csim inputs have {flat.shape[1]} values per sample, the project expects {manifest['in_size']}")
    if not np.all(np.isfinite(flat)):
        raise ValueError("csim inputs contain NaN or Inf")
    with tempfile.TemporaryDirectory(prefix="skiplstm_csim_") as tmp:
        fin, fout = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        with open(fin, "w") as f:
            f.write(f"{flat.shape[0]}\n")
            np.savetxt(f, flat, fmt="%.17g")
        res = subprocess.run([str(exe), str(fin), str(fout)], capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"csim binary failed ({res.returncode}): {res.stderr[:2000]}")
        lines = fout.read_text().splitlines()
    n, m = flat.shape[0], manifest["out_size"]
    outs = {0: np.zeros((n, m)), 1: np.zeros((n, m))}
    steps: dict[int, list] = {0: [], 1: []}
    for line in lines:
        parts = line.split()
        if parts[0] == "O":
            outs[int(parts[1])][int(parts[2])] = np.array(parts[3:], dtype=np.float64)
        else:
            steps[int(parts[1])].append([int(v) for v in parts[2:]])
    to_arr = lambda rows: np.array(rows, dtype=np.int64).reshape(-1, 8)  # noqa: E731
    return CsimResult(outs[0], outs[1], {"sparse": to_arr(steps[0]), "dense": to_arr(steps[1])})
