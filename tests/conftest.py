"""Shared pytest setup. Keep it small and sectioned: other suites add their own fixtures below."""

from __future__ import annotations

import os

# ------------------------------------------------------------------------------ environment (all tests)
# Runs when pytest loads conftest, before any test module imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# ------------------------------------------------------------------------------ layers / training
# (no fixtures yet)


# ------------------------------------------------------------------------------ HLS / emulator
# (owned by the HLS/emulator suite; add its fixtures here)
