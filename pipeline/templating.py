"""The generator's Jinja2 templates and the layer-config checks that need no hls4ml.

Kept out of `pipeline.hls` on purpose: importing anything under `pipeline.hls` runs its ``__init__``,
which registers `SparseStateLSTM` with hls4ml (and so imports hls4ml). `pipeline.stages` hashes
`template_dir` into its code digests from `record_status`, which must stay light; `pipeline.hls.layer`
re-exports these names for its callers.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np


def template_dir():
    return resources.files("pipeline.templates")


@cache
def _jinja_env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False,
    )


def render(template: str, **params) -> str:
    return _jinja_env().get_template(template).render(**params)


def check_density(key: str, value) -> float:
    """An expected density is a fraction of nonzero entries in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not 0.0 <= value <= 1.0:
        name = "".join(w.capitalize() for w in key.split("_"))
        raise ValueError(f"{name} must be a fraction of nonzero entries in [0, 1], got {name}={value!r}")
    return float(value)
