"""Module boundaries: the emulator reads the IR through `pipeline.ir` and never pulls in hls4ml or the
hls4ml extension (`pipeline.hls`); the generator writes that IR and never imports the emulator; importing
`pipeline.hls` changes nothing in hls4ml until `pipeline.hls.register()`; no import circles among
pipeline's modules; what only reads recipes and records imports no TensorFlow."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_importing_the_emulator_imports_no_hls4ml():
    """In a fresh interpreter (this test process has imported hls4ml elsewhere)."""
    code = ("import sys, pipeline.emulator, pipeline.ir\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('hls4ml', 'tensorflow', 'keras')"
            " or m.startswith('pipeline.hls'))\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top level or inside functions), with ``from x import y`` as ``x.y``."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_emulator_and_ir_import_nothing_from_the_generator():
    for name in ("emulator.py", "ir.py"):
        bad = {m for m in _imports(REPO / "pipeline" / name)
               if m.startswith(("hls4ml", "pipeline.hls", "tensorflow", "keras"))}
        assert not bad, f"pipeline/{name} imports {sorted(bad)}"
    # the generator does not run the emulator (it writes the IR the emulator reads; issue 22)
    for path in sorted((REPO / "pipeline" / "hls").glob("*.py")):
        bad = {m for m in _imports(path) if m == "pipeline.emulator" or m.startswith("pipeline.emulator.")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_shared_names_are_one_definition_reexported_by_the_generator():
    import pipeline.hls.fold  # noqa: F401
    from pipeline import ir
    from pipeline.hls import layer

    for name in ("quantise_threshold", "lut_values", "SIGMOID_RANGE", "TANH_RANGE", "PRUNE_MODES", "check_table_size"):
        assert getattr(layer, name) is getattr(ir, name), name
    from pipeline import emulator

    assert emulator.Tensor is ir.Tensor


def test_templating_imports_no_hls4ml():
    """`pipeline.records.code_digest` (run by ``make results`` per record) reads `template_dir` from here."""
    code = "import sys, pipeline.templating\nassert 'hls4ml' not in sys.modules, 'hls4ml'\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_hls4ml_extension_is_module_level_and_registered_once():
    """Issue 22: the handler, IR layer and templates are module-level classes; `register` registers them, once."""
    import inspect

    import hls4ml
    from hls4ml.converters.keras_v3._base import registry as keras_v3_handlers
    from hls4ml.model.optimizer.optimizer import optimizer_map

    import pipeline.hls.layer as layer
    from pipeline import templating

    classes = (layer.SparseStateLSTMHandler, layer.SparseStateLSTMLayer, layer.SparseStateLSTMConfigTemplate,
               layer.SparseStateLSTMFunctionTemplate)
    for cls in classes:
        assert inspect.getmodule(cls) is layer, cls
        assert "<locals>" not in cls.__qualname__, cls.__qualname__
    assert layer.TEMPLATES == classes[2:]
    for name in ("template_dir", "_jinja_env", "render", "check_density"):
        assert getattr(layer, name) is getattr(templating, name), name

    import pipeline.hls

    pipeline.hls.register()
    pipeline.hls.register()
    assert hls4ml.model.layers.layer_map["SparseStateLSTM"] is layer.SparseStateLSTMLayer
    assert type(keras_v3_handlers[layer.KERAS_CLASS]) is layer.SparseStateLSTMHandler
    kernel = str(templating.template_dir() / "nnet_sparse_lstm.h")
    for backend_name in ("Vivado", "Vitis"):
        backend = hls4ml.backends.get_backend(backend_name)
        ours = {name: type(optimizer_map[name]) for name in backend._get_layer_templates()
                if isinstance(optimizer_map[name], layer.TEMPLATES)}
        prefix = backend_name.lower() + ":sparsestatelstmlayer_"
        assert ours == {prefix + "config_template": layer.SparseStateLSTMConfigTemplate,
                        prefix + "function_template": layer.SparseStateLSTMFunctionTemplate}, ours
        sources = [str(p) for p in backend.get_custom_source().values() if p.name == "nnet_sparse_lstm.h"]
        assert sources == [kernel], sources


# ------------------------------------------------------------------------------ hls4ml's global state
_HLS4ML_STATE = """
def hls4ml_state():
    import hls4ml
    from hls4ml.converters.keras_v3._base import registry as handlers
    from hls4ml.model.flow.flow import get_flow
    from hls4ml.model.optimizer.optimizer import optimizer_map

    from pipeline import ir

    state = {"handlers": sorted(handlers), "layers": sorted(hls4ml.model.layers.layer_map),
             "optimizers": sorted(optimizer_map), "graph_readers": len(ir._GRAPH_READERS)}
    for name in ("Vivado", "Vitis"):
        backend = hls4ml.backends.get_backend(name)
        state[name] = (sorted(backend._get_layer_templates()), sorted(map(str, backend.get_custom_source())),
                       list(get_flow(name.lower() + ":write")._optimizers))
    return state
"""


def test_importing_pipeline_hls_leaves_hls4ml_alone_until_register():
    """In a fresh interpreter: importing every module of `pipeline.hls` (and the package's public names)
    changes none of hls4ml's registries; `pipeline.hls.register()` adds SparseStateLSTM (handler, layer,
    templates, kernel header, the write-time check) and the graph reader; a second call changes nothing."""
    code = _HLS4ML_STATE + """
import importlib, pkgutil
import hls4ml
before = hls4ml_state()
import pipeline, pipeline.hls
for m in pkgutil.iter_modules(pipeline.hls.__path__):
    importlib.import_module("pipeline.hls." + m.name)
pipeline.generate, pipeline.convert, pipeline.register, pipeline.Emulator
assert hls4ml_state() == before, "importing changed hls4ml"
assert "pipeline.layers.SparseStateLSTM" not in before["handlers"] and "SparseStateLSTM" not in before["layers"]
pipeline.hls.register()
once = hls4ml_state()
assert "pipeline.layers.SparseStateLSTM" in once["handlers"] and "SparseStateLSTM" in once["layers"]
assert once["graph_readers"] == before["graph_readers"] + 1
for name in ("Vivado", "Vitis"):
    assert once[name][1] == sorted(set(before[name][1]) | {"nnet_utils/nnet_sparse_lstm.h"}), once[name][1]
    assert once[name][2][0] == "skiplstm_check_weight_ranges", once[name][2][:2]
    assert sum("sparsestatelstm" in t for t in once[name][0]) == 2, once[name][0]
pipeline.register()
assert hls4ml_state() == once, "a second register() changed hls4ml"
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


# ------------------------------------------------------------------------------ import circles
def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = REPO / "pipeline") -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, at module level or inside a function (both can
    close a circle: a function-level import runs while the importing module may be half-initialised
    elsewhere). ``from a import b`` is module ``a.b`` when that is a module, else ``a``; relative imports
    are resolved."""
    files = {_module_name(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names}
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_circle_finder_finds_circles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"} - {"e"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles_in_pipeline():
    """No module of `pipeline` imports, directly or through others, a module that imports it back
    (function-level imports count): the layers of the package stay layers."""
    graph = import_graph()
    assert {"pipeline.stages", "pipeline.records", "pipeline.hls.project", "pipeline.hls.registration"} <= set(graph)
    assert "pipeline.records" in graph["pipeline.stages"] and "pipeline.hls.layer" in graph["pipeline.hls.registration"]
    assert circles(graph) == []


# ------------------------------------------------------------------------------ light paths: no TensorFlow
_HEAVY = ("tensorflow", "keras", "hls4ml", "tf_keras", "tensorflow_model_optimization")


def test_reading_recipes_and_records_imports_no_tensorflow(tmp_path):
    """In a fresh interpreter: ``import pipeline`` + `load_recipe` (the issue's check), the CLI's help,
    `make results` (`pipeline.results.main` on the committed ledger and a run under out/ with train and
    emulate records) and `make bench`'s reading part (`part_trained`) import neither TensorFlow, Keras
    nor hls4ml."""
    import shutil

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(REPO / "docs" / "results_rows.json", docs / "results_rows.json")
    run = tmp_path / "out" / "mnist_rows_og90" / "seed0"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"not a model: only hashed")
    for name in ("train_metrics.json", ".train_inputs.json", "emulate.json"):
        (run / name).write_text('{"inputs": {}}')
    code = f"""
import sys, runpy, contextlib, io
heavy = {_HEAVY!r}
def check(what):
    bad = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
    assert not bad, (what, bad[:5])
import pipeline
pipeline.load_recipe("mnist_rows_demo")
assert "tensorflow" not in sys.modules
check("load_recipe")
for argv in (["--help"], ["results", "--help"], ["bench", "--help"], ["train", "--help"]):
    sys.argv = ["skiplstm", *argv]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        runpy.run_module("pipeline.cli", run_name="__main__")
    check(argv)
from pipeline import records
r = pipeline.load_recipe("mnist_rows_og90")
assert records.record_status("train", r, {str(tmp_path / 'out')!r}) == "stale"
assert records.record_status("emulate", r, {str(tmp_path / 'out')!r}) == "stale"
check("record_status")
with contextlib.redirect_stdout(io.StringIO()):
    rows = pipeline.run_results(out={str(tmp_path / 'out')!r}, docs={str(docs)!r})
assert rows, "no rows"
check("results")
from pipeline.bench import part_trained
with contextlib.redirect_stdout(io.StringIO()):
    part_trained({str(tmp_path / 'out')!r})
check("bench part_trained")
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (docs / "results_table.md").is_file()


def test_public_api_names_resolve_lazily():
    """Every name of `pipeline.__all__` resolves to the object it names in its module; a wrong name is an
    AttributeError; importing the package itself imports none of them."""
    import importlib

    import pipeline

    assert "SparseStateLSTM" in dir(pipeline) and set(pipeline.__all__) == set(pipeline._PUBLIC)
    for name, (module, attr) in pipeline._PUBLIC.items():
        assert getattr(pipeline, name) is getattr(importlib.import_module(module), attr), name
    try:
        pipeline.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("pipeline.no_such_name did not raise")
