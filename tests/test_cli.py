"""The CLI (issue 22): argparse subcommands with only their own options, and seeds as a run dimension.

Fast: every stage function is replaced by a recorder, nothing is trained or generated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

import pipeline
from pipeline import cli

REPO = Path(__file__).resolve().parents[1]


class Recorder:
    def __init__(self, result=None, error: BaseException | None = None):
        self.calls: list[tuple[tuple, dict]] = []
        self.result = result
        self.error = error

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def rec(monkeypatch, tmp_path):
    """Every function the CLI calls, replaced by a recorder.

    The modules themselves are replaced (in sys.modules and on the package), so that these tests neither
    import TensorFlow nor depend on the state of pipeline/stages.py, results.py, ... being edited.
    """
    report = tmp_path / "report.md"
    report.write_text("# report\n\nthe third line\nmore\n")
    fakes = {}
    layout = {"stages": {name: name for name in ("run_train", "run_sweep", "run_hls", "run_csim", "run_emulate",
                                                   "run_rtl", "run_report", "run_demo")},
              "synth": {"run": "synth"}, "results": {"main": "results"}, "bench": {"main": "bench"}}
    for module_name, functions in layout.items():
        module = types.ModuleType(f"pipeline.{module_name}")
        for attr, key in functions.items():
            fakes[key] = Recorder(result=report if key == "run_demo" else None)
            setattr(module, attr, fakes[key])
        monkeypatch.setitem(sys.modules, f"pipeline.{module_name}", module)
        monkeypatch.setattr(pipeline, module_name, module, raising=False)
    return fakes


def _only_call(fakes: dict, name: str) -> tuple[tuple, dict]:
    called = {k: v.calls for k, v in fakes.items() if v.calls}
    assert list(called) == [name], called
    assert len(called[name]) == 1
    return called[name][0]


def _exit_code(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    return info.value.code, capsys.readouterr().err


# ------------------------------------------------------------------------------ each stage, its arguments
CASES = [
    (["train"], "run_train",
     (("mnist_rows_demo",), dict(out="out", seed=None, force=False, epochs=None, limit=None))),
    (["train", "--model", "m", "--out", "o", "--seed", "3", "--force", "--epochs", "2", "--limit", "50"], "run_train",
     (("m",), dict(out="o", seed=3, force=True, epochs=2, limit=50))),
    (["train", "--model", "m", "--seeds", "0-3,7,2", "--jobs", "2"], "run_sweep",
     (("m",), dict(out="out", seeds=[0, 1, 2, 3, 7], jobs=2, force=False, epochs=None, limit=None))),
    (["train", "--seeds", "all"], "run_sweep",
     (("mnist_rows_demo",), dict(out="out", seeds=None, jobs=1, force=False, epochs=None, limit=None))),
    (["train", "--jobs", "4", "--epochs", "1"], "run_sweep",
     (("mnist_rows_demo",), dict(out="out", seeds=None, jobs=4, force=False, epochs=1, limit=None))),
    (["train", "--seed", "5", "--jobs", "2", "--force"], "run_sweep",
     (("mnist_rows_demo",), dict(out="out", seeds=[5], jobs=2, force=True, epochs=None, limit=None))),
    (["hls"], "run_hls", (("mnist_rows_demo",), dict(out="out", root="hls_project", seed=None, force=False))),
    (["hls", "--model", "m", "--out", "o", "--root", "r", "--seed", "2", "--force"], "run_hls",
     (("m",), dict(out="o", root="r", seed=2, force=True))),
    (["csim", "--model", "m", "--root", "r", "--seed", "0"], "run_csim",
     (("m",), dict(out="out", root="r", seed=0, force=False))),
    (["emulate", "--out", "o", "--seed", "4", "--force"], "run_emulate",
     (("mnist_rows_demo",), dict(out="o", root="hls_project", seed=4, force=True))),
    (["rtl", "--model", "m"], "run_rtl", (("m",), dict(out="out", root="hls_project", seed=None, force=False))),
    (["rtl", "--model", "m", "--root", "r"], "run_rtl", (("m",), dict(out="out", root="r", seed=None, force=False))),
    (["report", "--model", "m", "--out", "o", "--root", "r", "--seed", "1"], "run_report",
     (("m",), dict(out="o", root="r", seed=1))),
    (["demo", "--model", "m", "--seed", "6", "--epochs", "1", "--limit", "9"], "run_demo",
     (("m",), dict(out="out", root="hls_project", seed=6, epochs=1, limit=9))),
    (["synth", "--model", "m", "--root", "r", "--seed", "2"], "synth",
     (("m",), dict(out="out", root="r", seed=2))),
    (["results"], "results", (("out",), dict(only_out=False, root="hls_project"))),
    (["results", "--out", "o", "--root", "r", "--only-out"], "results", (("o",), dict(only_out=True, root="r"))),
    (["bench"], "bench", (("bench",), dict(parts=None))),
    (["bench", "--out", "b"], "bench", (("b",), dict(parts=None))),
    (["bench", "--parts", "trained,training"], "bench", (("bench",), dict(parts="trained,training"))),
]


@pytest.mark.parametrize("argv,name,call", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_stage_calls(rec, capsys, argv, name, call):
    assert cli.main(argv) == 0
    assert _only_call(rec, name) == call


def test_demo_prints_the_reports_third_line(rec, capsys):
    assert cli.main(["demo"]) == 0
    assert capsys.readouterr().out == "the third line\n"


# ------------------------------------------------------------------------------ options of other stages refused
@pytest.mark.parametrize("argv,text", [
    (["hls", "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    (["hls", "--limit", "3"], "unrecognized arguments: --limit 3"),
    (["hls", "--seeds", "0-3"], "unrecognized arguments: --seeds 0-3"),
    (["csim", "--jobs", "2"], "unrecognized arguments: --jobs 2"),
    (["emulate", "--epochs", "3"], "unrecognized arguments: --epochs 3"),
    (["rtl", "--only-out"], "unrecognized arguments: --only-out"),
    (["report", "--force"], "unrecognized arguments: --force"),
    (["demo", "--force"], "unrecognized arguments: --force"),
    (["demo", "--seeds", "all"], "unrecognized arguments: --seeds all"),
    (["synth", "--force"], "unrecognized arguments: --force"),
    (["train", "--root", "r"], "unrecognized arguments: --root r"),
    (["train", "--only-out"], "unrecognized arguments: --only-out"),
    (["results", "--model", "x"], "unrecognized arguments: --model x"),
    (["results", "--seed", "1"], "unrecognized arguments: --seed 1"),
    (["bench", "--model", "x"], "unrecognized arguments: --model x"),
    (["bench", "--only-out"], "unrecognized arguments: --only-out"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "the following arguments are required: stage"),
])
def test_foreign_options_refused(rec, capsys, argv, text):
    code, err = _exit_code(argv, capsys)
    assert code == 2 and text in err, err
    assert not any(f.calls for f in rec.values())


@pytest.mark.parametrize("argv,text", [
    (["train", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
    (["train", "--limit", "many"], "--limit: must be a positive integer, got 'many'"),
    (["train", "--jobs", "0"], "--jobs: must be a positive integer, got '0'"),
    (["demo", "--epochs", "-2"], "--epochs: must be a positive integer, got '-2'"),
    (["hls", "--seed", "-1"], "--seed: must be a non-negative integer, got '-1'"),
    (["emulate", "--seed", "x"], "--seed: must be a non-negative integer, got 'x'"),
])
def test_bad_numbers_refused(rec, capsys, argv, text):
    code, err = _exit_code(argv, capsys)
    assert code == 2 and text in err, err


def test_every_subcommand_takes_debug(rec, capsys):
    for argv in (["train"], ["hls"], ["csim"], ["emulate"], ["rtl"], ["report"], ["demo"], ["synth"],
                 ["results"], ["bench"]):
        assert cli.main(argv + ["--debug"]) == 0, argv


# ------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize("text,seeds", [
    ("all", None),
    (" ALL ", None),
    ("0", [0]),
    ("0-9", list(range(10))),
    ("0,3,5-7", [0, 3, 5, 6, 7]),
    ("7,3,3,5-7,0-1", [0, 1, 3, 5, 6, 7]),
    ("4-4", [4]),
    (" 1 , 2 ", [1, 2]),
    ("012", [12]),
])
def test_parse_seeds(text, seeds):
    assert cli.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["a-b", "5-2", "-1", "", " ", "1,", ",1", "1,,2", "1-", "1-2-3", "1.5", "x",
                                  "all,1", "0x3", "١"])
def test_parse_seeds_refuses(text):
    with pytest.raises(ValueError) as info:
        cli.parse_seeds(text)
    assert repr(text) in str(info.value) and "'0,3,5-7'" in str(info.value)


@pytest.mark.parametrize("text", ["0-99999999999", "0-9999,10000-19999"])
def test_parse_seeds_refuses_a_runaway_range_before_building_it(text):
    with pytest.raises(ValueError, match=f"names more than {cli.MAX_SEEDS} seeds"):
        cli.parse_seeds(text)
    assert cli.parse_seeds(f"0-{cli.MAX_SEEDS - 1}") == list(range(cli.MAX_SEEDS))


@pytest.mark.parametrize("text", ["a-b", "5-2", "-1", ""])
def test_bad_seeds_spec_is_an_argparse_error(rec, capsys, text):
    code, err = _exit_code(["train", "--seeds", text], capsys)
    assert code == 2
    assert "argument --seeds:" in err and repr(text) in err and "'0,3,5-7'" in err, err
    assert not any(f.calls for f in rec.values())


def test_seeds_equals_form_with_leading_dash(rec, capsys):
    code, err = _exit_code(["train", "--seeds=-1"], capsys)
    assert code == 2 and "'-1'" in err


def test_seed_and_seeds_are_exclusive(rec, capsys):
    code, err = _exit_code(["train", "--seed", "1", "--seeds", "0-3"], capsys)
    assert code == 2 and "not allowed with argument" in err, err
    assert not any(f.calls for f in rec.values())


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("argv,name", [(["hls", "--model", "m"], "run_hls"),
                                       (["train", "--seeds", "0-1"], "run_sweep"),
                                       (["synth"], "synth"), (["results"], "results")])
def test_stage_error_is_one_line_exit_1(rec, capsys, argv, name):
    rec[name].error = ValueError("bad thing\nsecond line")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err == f"skiplstm {argv[0]}: error: ValueError: bad thing\n"


def test_debug_reraises(rec, capsys):
    rec["run_csim"].error = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["csim", "--debug"])


def test_keyboard_interrupt_exits_130(rec, capsys):
    rec["run_emulate"].error = KeyboardInterrupt()
    assert cli.main(["emulate"]) == 130
    assert capsys.readouterr().err == "skiplstm: interrupted\n"


def test_no_stderr_filter_when_called_from_python(rec, monkeypatch, capsys):
    import pipeline.console

    called = []
    monkeypatch.setattr(pipeline.console, "filter_stderr", lambda: called.append(1))
    assert cli.main(["rtl"]) == 0
    assert called == []
    # from the command line (argv None) it is installed, unless --debug
    monkeypatch.setattr("sys.argv", ["skiplstm", "rtl"])
    assert cli.main() == 0
    assert called == [1]
    monkeypatch.setattr("sys.argv", ["skiplstm", "rtl", "--debug"])
    assert cli.main() == 0
    assert called == [1]


# ------------------------------------------------------------------------------ the Makefile
def _make_n(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MODEL", "OUT", "SEED", "SEEDS", "JOBS")}
    proc = subprocess.run(["make", "-n", *args], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stdout.splitlines() if "-m pipeline.cli" in x]
    assert len(lines) == 1, proc.stdout
    return lines[0]


def test_make_passes_seed_options():
    line = _make_n("train", "MODEL=x", "SEEDS=0-3", "JOBS=2")
    assert "pipeline.cli train --model x" in line and "--seeds 0-3 --jobs 2" in line and "--seed " not in line
    line = _make_n("train", "MODEL=x", "SEED=3")
    assert "--seed 3" in line and "--seeds" not in line and "--jobs" not in line
    assert "--seed 2" in _make_n("hls", "SEED=2")
    assert "--seed" not in _make_n("hls")
    for target in ("csim", "emulate", "rtl", "report", "demo", "synth"):
        assert "--seed 4" in _make_n(target, "SEED=4"), target
        assert "--seed" not in _make_n(target), target
    line = _make_n("train")
    assert "--seed" not in line and "--jobs" not in line
