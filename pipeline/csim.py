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
    sequences: dict[str, np.ndarray]  # mode -> int array (rows: sample, layer, init_cycles, cycles start to done)

    def layer_steps(self, mode: str, layer_id: int) -> np.ndarray:
        s = self.steps[mode]
        return s[s[:, 1] == layer_id]

    def layer_sequences(self, mode: str, layer_id: int) -> np.ndarray:
        s = self.sequences[mode]
        return s[s[:, 1] == layer_id]


def _sources(project: Path) -> list[Path]:
    files = sorted(p for p in (project / "firmware").rglob("*") if p.is_file() and p.suffix in (".h", ".cpp", ".txt"))
    return files + [project / "skiplstm_csim.cpp"]


def source_digest(project: str | Path) -> str:
    """Content hash of every source, header and weight file of a project plus the compiler flags
    (the build cache key; the csim stage's up-to-date key)."""
    return sha256_files(_sources(Path(project)), extra=" ".join(CXXFLAGS))


def _manifest(project: Path) -> dict:
    path = project / "skiplstm_manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{project} is not a SkipLSTM project (no skiplstm_manifest.json); run the hls stage first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is corrupted ({err}); regenerate the project (hls stage with --force)") from None


def check_inputs(x, manifest: dict) -> np.ndarray:
    """``x`` as float64 (N, *input_shape), refusing non-real, non-numeric and object arrays, an empty
    batch, a wrong shape and NaN/Inf."""
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise ValueError(f"csim inputs must be a real numeric array: {err}") from None
    if raw.dtype.kind == "c":
        raise ValueError(f"csim inputs must be real numbers, got complex values (dtype {raw.dtype}); "
                         "pass the real part explicitly (x.real) if that is what you mean")
    if raw.dtype.kind in "OV":
        raise ValueError(f"csim inputs must be a real numeric array (integer or floating point), got dtype {raw.dtype}")
    if raw.dtype.kind in "US":  # text: say which entry is not a number
        try:
            raw.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"csim inputs must be numeric: {err}") from None
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"csim inputs must be numeric (integer or floating point), got dtype {raw.dtype}")
    x = raw.astype(np.float64)
    shape = tuple(manifest.get("input_shape", [manifest["in_size"]]))
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"csim inputs must be a non-empty batch of shape (N, {', '.join(map(str, shape))}), "
                         f"got shape {x.shape}")
    if tuple(x.shape[1:]) != shape and not (x.ndim == 2 and x.shape[1] == manifest["in_size"]):
        raise ValueError(f"csim inputs must have shape (N, {', '.join(map(str, shape))}) (or (N, "
                         f"{manifest['in_size']}) flattened), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("csim inputs contain NaN or Inf")
    return x


def build(project: str | Path) -> Path:
    """Compile (or reuse) ``<project>/skiplstm_csim``; raise `CompileError` with the first messages."""
    project = Path(project).resolve()
    if not (project / "skiplstm_csim.cpp").is_file():
        raise FileNotFoundError(f"{project} is not a SkipLSTM project (no skiplstm_csim.cpp); run the hls stage first")
    cxx = os.environ.get("CXX") or "g++"
    gxx = shutil.which(cxx)
    if gxx is None:
        source = "$CXX" if os.environ.get("CXX") else "the default"
        raise FileNotFoundError(
            f"C++ compiler {cxx!r} ({source}) not found: the C-simulation needs a C++14 compiler "
            "(apt-get install g++, or set CXX to one)"
        )
    if '"' in str(project) or "\n" in str(project):
        raise ValueError(f"project path {str(project)!r} contains a double quote or a newline, which a C++ "
                         "#include cannot name; generate the project under another folder")
    manifest = _manifest(project)
    digest = source_digest(project)
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
    if not (project / "skiplstm_csim.cpp").is_file():
        raise FileNotFoundError(f"{project} is not a SkipLSTM project (no skiplstm_csim.cpp); run the hls stage first")
    manifest = _manifest(project)
    flat = check_inputs(x, manifest)  # before the (slow) build
    flat = flat.reshape(flat.shape[0], -1)
    exe = build(project)
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
    seqs: dict[int, list] = {0: [], 1: []}
    for line in lines:
        parts = line.split()
        if parts[0] == "O":
            outs[int(parts[1])][int(parts[2])] = np.array(parts[3:], dtype=np.float64)
        else:
            (steps if parts[0] == "C" else seqs)[int(parts[1])].append([int(v) for v in parts[2:]])

    def to_arr(rows, width):
        return np.array(rows, dtype=np.int64).reshape(-1, width)

    return CsimResult(outs[0], outs[1], {"sparse": to_arr(steps[0], 8), "dense": to_arr(steps[1], 8)},
                      {"sparse": to_arr(seqs[0], 4), "dense": to_arr(seqs[1], 4)})
