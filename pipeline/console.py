"""A console a person reads: drop TensorFlow's known start-up noise from the CLI's stderr.

TensorFlow 2.21 writes these lines on every CPU-only run, between our stage lines::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. You may see slightly different numerical ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ... (303)
    E0000 ... node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool which is not in ...
    WARNING:tensorflow:5 out of the last 9 calls to <function ...> triggered tf.function retracing. ...

The C++ ones are logged by Abseil before TensorFlow initialises its logging, straight to file descriptor
2, so ``TF_CPP_MIN_LOG_LEVEL`` (which the CLI sets to 2) does not reach them, and raising it to 3 would
hide real C++ errors. ``TF_ENABLE_ONEDNN_OPTS=0`` would silence the oneDNN line but changes the training
numerics, so it is not used. Instead `filter_stderr` routes file descriptor 2 through a small filter
process that drops exactly the lines matched by `NOISE` and passes every other byte through unchanged
(tracebacks, g++ errors, our one-line errors). The cuInit failure is dropped only after TensorFlow said
that this machine has no CUDA driver; on a machine with one, it stays. The retracing warning is benign
here: each stage predicts with several models (the trained one, the sparsity probes), which TensorFlow
counts as retracing one function.

``SKIPLSTM_RAW_STDERR=1`` or ``--debug`` keep stderr untouched.
"""

from __future__ import annotations

import atexit
import os
import re
import select
import subprocess
import sys

NOISE = [
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\. "),
    re.compile(rb"I\d{4} [\d:. ]+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"),
    re.compile(rb"E\d{4} [\d:. ]+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool "
               rb"which is not in the op definition"),
    re.compile(rb"WARNING:tensorflow:\d+ out of the last \d+ calls to <function .*> triggered tf\.function "
               rb"retracing\."),
]
NO_DRIVER = NOISE[2]
CUINIT = re.compile(rb"E\d{4} [\d:. ]+\d+ cuda_platform\.cc:\d+\] failed call to cuInit: ")


class LineFilter:
    """Drops the noise lines of a byte stream fed in arbitrary chunks (stateful: the cuInit failure is
    noise only after the no-driver line)."""

    def __init__(self):
        self.no_driver = False

    def keep(self, line: bytes) -> bool:
        if NO_DRIVER.match(line):
            self.no_driver = True
        if any(p.match(line) for p in NOISE):
            return False
        return not (self.no_driver and CUINIT.match(line))


def _pump(fd_in: int, fd_out: int) -> None:
    """Copy ``fd_in`` to ``fd_out`` line by line, dropping noise; a partial line is passed on after
    0.2 s without more input (a prompt or a progress line is not held back)."""
    filt = LineFilter()
    pending = b""
    while True:
        ready, _, _ = select.select([fd_in], [], [], 0.2 if pending else None)
        if not ready:
            os.write(fd_out, pending)
            pending = b""
            continue
        chunk = os.read(fd_in, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if filt.keep(line))
        if out:
            os.write(fd_out, out)
    if pending and filt.keep(pending):
        os.write(fd_out, pending)


_FILTER: subprocess.Popen | None = None


def filter_stderr() -> bool:
    """Route this process's file descriptor 2 (and its children's) through the noise filter; True when
    installed. Call it before TensorFlow is imported; it is undone at exit (the filter then drains)."""
    global _FILTER
    if _FILTER is not None or os.name != "posix" or os.environ.get("SKIPLSTM_RAW_STDERR"):
        return False
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    try:
        # its own session: Ctrl-C reaches the CLI, and the filter lives on to pass its last words through
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the folder holding `pipeline`
        code = f"import sys; sys.path.insert(0, {root!r}); import pipeline.console as c; c._pump(0, 1)"
        proc = subprocess.Popen([sys.executable, "-S", "-c", code], stdin=read_fd, stdout=2, start_new_session=True)
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return False
    os.close(read_fd)
    saved = os.dup(2)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    _FILTER = proc
    atexit.register(_restore, saved)
    return True


def _restore(saved: int) -> None:
    global _FILTER
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os.dup2(saved, 2)  # closes our end of the pipe: the filter sees EOF once our children have exited
    os.close(saved)
    if _FILTER is not None:
        try:
            _FILTER.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        _FILTER = None
