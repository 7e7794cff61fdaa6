"""The CLI's stderr holds what a person needs: TensorFlow's known start-up noise is dropped, everything
else (our errors, a child's errors, real C++ log errors) passes through."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from pipeline.console import LineFilter

REPO = Path(__file__).resolve().parent.parent

# as TensorFlow 2.21 printed them here (CPU-only machine), between the stage lines of `make demo`
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796450857.904350   15316 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796450857.904724   15316 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796450867.227896   15316 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796450870.769145   15316 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition: Op<name=MapDataset; signature=input_dataset:variant>",
    "WARNING:tensorflow:5 out of the last 9 calls to <function TensorFlowTrainer.make_predict_function.<locals>."
    "one_step_on_data_distributed at 0x7f9521f4c7c0> triggered tf.function retracing. Tracing is expensive.",
]
KEEP = [
    "[skiplstm] train: tiny: training (2 epochs)",
    "skiplstm emulate: error: FileNotFoundError: x not found",
    "E0000 00:00:1796450870.769145   15316 node_def_util.cc:682] some other NodeDef problem",
    "E0000 00:00:1796450870.769145   15316 kernel.cc:12] OOM when allocating tensor",
    "Traceback (most recent call last):",
    "WARNING:tensorflow:something that is not retracing",
]
MARKERS = ("absl::InitializeLog", "oneDNN custom operations", "cudart_stub", "cuInit", "use_unbounded_threadpool",
           "tf.function retracing")


def test_line_filter_drops_exactly_the_known_noise():
    f = LineFilter()
    assert [x for x in NOISE + KEEP if f.keep(x.encode())] == KEEP
    # a failed cuInit on a machine with a CUDA driver is a real error: kept
    assert LineFilter().keep(NOISE[3].encode())


def test_filter_passes_the_process_and_its_children_through(tmp_path):
    code = ("import os, subprocess, sys\n"
            "from pipeline.console import filter_stderr\n"
            "assert filter_stderr()\n"
            f"os.write(2, {(NOISE[0] + chr(10) + NOISE[2] + chr(10)).encode()!r})\n"
            "print('ours', file=sys.stderr, flush=True)\n"
            f"subprocess.run(['sh', '-c', {'echo ' + shlex.quote(NOISE[3]) + ' >&2; echo child error >&2'!r}])\n"
            "os.write(2, b'no newline at exit')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "ours\nchild error\nno newline at exit"


def test_cli_stage_stderr_has_no_tensorflow_noise(tmp_path):
    """A stage that imports TensorFlow, then fails: its stderr is exactly its one error line."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "emulate", "--model", "mnist_rows_demo",
                           "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert not [x for x in lines if any(m in x for m in MARKERS)], proc.stderr
    assert len(lines) == 1 and lines[0].startswith("skiplstm emulate: error: FileNotFoundError:"), proc.stderr
