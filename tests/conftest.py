"""Shared pytest setup. Keep it small and sectioned: other suites add their own fixtures below."""

from __future__ import annotations

import os

import pytest

# ------------------------------------------------------------------------------ environment (all tests)
# Runs when pytest loads conftest, before any test module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ------------------------------------------------------------------------------ layers / training
# (no fixtures yet)


# ------------------------------------------------------------------------------ HLS / emulator
# (owned by the HLS/emulator suite; add its fixtures here)


# ------------------------------------------------------------------------------ hardware tools
# `make setup` installs both; a test marked with one of these fails without it (never skips).
@pytest.fixture(scope="session")
def verilator_installed():
    from _tools import require

    return require("verilator")


@pytest.fixture(scope="session")
def yosys_installed():
    from _tools import require

    return require("yosys")
