"""The synthesisability check (pipeline/hls/synth_check.py) passes the generated kernel and top function
and catches each rule on a deliberately broken copy; `generate` runs it; hls4ml settings the kernel does
not implement are refused (issue: the accelerator as Vitis HLS would build it)."""

from __future__ import annotations

import re
import shutil

import hls4ml
import keras
import pytest

import pipeline.hls
from pipeline.hls import synth_check
from pipeline.hls.layer import template_dir
from pipeline.hls.project import generate
from pipeline.layers import SparseStateLSTM
from pipeline.recipes import DEFAULTS

KERNEL = (template_dir() / "nnet_sparse_lstm.h").read_text()
pipeline.hls.register()  # the tests below also convert with hls4ml's own calls


def _model(units=8, n_in=3, steps=4):
    inp = keras.Input((steps, n_in), name="x")
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(SparseStateLSTM(units, 0.1, name="lstm")(inp)),
                        name="m")
    return model


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return generate(_model(), dict(DEFAULTS["hls"], lanes=4), tmp_path_factory.mktemp("sc"))


def test_generated_project_passes_and_top_is_dataflow(project):
    synth_check.check_project(project)
    top = (project / "firmware" / "m.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "#pragma HLS PIPELINE" not in top
    assert synth_check.check_kernel(KERNEL) == []


def _broken(old: str, new: str, count: int = 1) -> str:
    assert KERNEL.count(old) >= 1, old
    return KERNEL.replace(old, new, count)


STEP = "    for (unsigned t = 0; t < T; t++) {\n"
BROKEN = {
    "pipelined step loop": (_broken(STEP, STEP + "        #pragma HLS PIPELINE II=1\n"),
                            r"rule 1: .*loop StepLoop is pipelined but contains the data-dependent loop StreamLoop"),
    "pipelined function": (_broken("    bool skip = CONFIG_T::skip_zeros;", "    #pragma HLS PIPELINE\n    bool skip = CONFIG_T::skip_zeros;"),
                           r"rule 1: .*function sparse_lstm_core is pipelined"),
    "no tripcount": (_broken("            #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::stream_max avg=CONFIG_T::stream_avg\n", ""),
                     r"rule 2: .*loop StreamLoop has a data-dependent bound \(n_iter\) and no LOOP_TRIPCOUNT"),
    "std outside guard": (_broken("    bool skip = CONFIG_T::skip_zeros;", "    std::vector<int> v;\n    bool skip = CONFIG_T::skip_zeros;"),
                          r"rule 3: .*uses std::"),
    "malloc": (_broken("    bool skip = CONFIG_T::skip_zeros;", "    int *p = (int *)malloc(4);\n    bool skip = CONFIG_T::skip_zeros;"),
               r"rule 3: .*uses malloc"),
    "recursion": (_broken("    #pragma HLS INLINE\n    index_T q = x;", "    #pragma HLS INLINE\n    index_T q = x;\n    sparse_lstm_lut_index<index_T, BITS>(x);"),
                  r"rule 3: .*function sparse_lstm_lut_index calls itself"),
    "pair loop without tripcount": (_broken("            #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::stream_max avg=CONFIG_T::stream_avg\n"
                                            "            #pragma HLS DEPENDENCE variable=acc inter false\n",
                                            "            #pragma HLS DEPENDENCE variable=acc inter false\n"),
                                    r"rule 2: .*loop PairLoop has a data-dependent bound \(n_iter\) and no LOOP_TRIPCOUNT"),
    "acc not banked by lane": (_broken("    #pragma HLS ARRAY_PARTITION variable=acc complete dim=2\n", ""),
                               r"rule 4: .*array acc is not completely partitioned in dim 2"),
    "one shared table": (_broken("    #pragma HLS ARRAY_PARTITION variable=sig_o complete dim=1\n", ""),
                         r"rule 4: .*array sig_o is not completely partitioned in dim 1"),
    "gate loop not II=1": (_broken("            #pragma HLS PIPELINE II=1\n            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::gate_iters_dense max=CONFIG_T::gate_iters_sparse\n        GateLanes",
                                   "            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::gate_iters_dense max=CONFIG_T::gate_iters_sparse\n        GateLanes"),
                           r"rule 4: .*loop GateLoop is missing or not PIPELINE II=1"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_rule_is_caught(case):
    text, pattern = BROKEN[case]
    problems = synth_check.check_kernel(text)
    assert any(re.search(pattern, p) for p in problems), problems


def test_guarded_code_is_allowed():
    text = _broken("    bool skip = CONFIG_T::skip_zeros;",
                   "#ifndef __SYNTHESIS__\n    std::vector<int> v(3);\n#endif\n    bool skip = CONFIG_T::skip_zeros;")
    assert synth_check.check_kernel(text) == []


ANCHOR = "    bool skip = CONFIG_T::skip_zeros;"


def _with(code: str) -> str:
    """The kernel with ``code`` (lines) inserted at the top of the sparse_lstm body."""
    return _broken(ANCHOR, code + "\n" + ANCHOR)


SYNTH = ("std::vector<int> v;", r"uses std::"), ("int *p = new int[4];", r"uses new"), ('printf("%d", 1);', r"uses printf")


@pytest.mark.parametrize("bad, pattern", SYNTH)
@pytest.mark.parametrize("guard", [
    "#ifdef X\n    int a;\n#else\n    {bad}\n#endif",  # any #if: either branch may be compiled
    "#ifdef X\n    {bad}\n#else\n    int a;\n#endif",
    "#ifndef X\n    int a;\n#else\n    {bad}\n#endif",
    "#if X > 1\n    int a;\n#elif Y\n    int b;\n#else\n    {bad}\n#endif",
    "#if X > 1\n    int a;\n#elif Y\n    {bad}\n#endif",
    "#ifndef __SYNTHESIS__\n    int a;\n#else\n    {bad}\n#endif",  # the #else of a C-sim guard is synthesised
    "#if !defined(__SYNTHESIS__)\n    int a;\n#else\n    {bad}\n#endif",
    "#ifdef __SYNTHESIS__\n    {bad}\n#else\n    int a;\n#endif",  # the synthesised branch
    "#if defined(__SYNTHESIS__)\n    {bad}\n#endif",
    "#ifndef __SYNTHESIS__\n#ifdef X\n    int a;\n#endif\n#else\n#ifdef X\n    int a;\n#else\n    {bad}\n#endif\n#endif",
    "#ifdef X\n#ifndef __SYNTHESIS__\n    int a;\n#else\n    {bad}\n#endif\n#endif",
])
def test_code_that_synthesis_may_compile_is_checked(guard, bad, pattern):
    problems = synth_check.check_kernel(_with(guard.format(bad=bad)))
    assert any(re.search(rf"rule 3: .*{pattern} outside", p) for p in problems), problems


@pytest.mark.parametrize("bad, pattern", SYNTH)
@pytest.mark.parametrize("guard", [
    "#ifndef __SYNTHESIS__\n    {bad}\n#endif",
    "#if !defined(__SYNTHESIS__)\n    {bad}\n#else\n    int a;\n#endif",
    "#if !defined __SYNTHESIS__\n    {bad}\n#endif",
    "#ifdef __SYNTHESIS__\n    int a;\n#else\n    {bad}\n#endif",
    "#if defined(__SYNTHESIS__)\n    int a;\n#elif X\n    {bad}\n#else\n    {bad}\n#endif",
    "#ifndef __SYNTHESIS__\n#ifdef X\n    {bad}\n#else\n    {bad}\n#endif\n#endif",  # nested in a C-sim guard
    "#ifdef X\n    int a;\n#ifndef __SYNTHESIS__\n    {bad}\n#endif\n#else\n#ifdef __SYNTHESIS__\n    int b;\n"
    "#else\n    {bad}\n#endif\n#endif",
])
def test_code_only_c_simulation_compiles_is_not_checked(guard, bad, pattern):
    assert synth_check.check_kernel(_with(guard.format(bad=bad))) == []


def test_strip_csim_only_keeps_what_synthesis_may_compile():
    text = "\n".join(["#ifdef X", "a", "#else", "b", "#endif", "#ifndef __SYNTHESIS__", "c", "#ifdef Y", "d", "#endif",
                      "#else", "e", "#ifdef Y", "f", "#else", "g", "#endif", "#endif", "#ifdef __SYNTHESIS__", "h",
                      "#elif Z", "i", "#else", "j", "#endif", "k"])
    assert synth_check.strip_csim_only(text).split() == ["a", "b", "e", "f", "g", "h", "k"]


def test_broken_project_is_refused(project, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    top = copy / "firmware" / "m.cpp"
    top.write_text(top.read_text().replace("#pragma HLS DATAFLOW", "#pragma HLS PIPELINE"))
    kernel = copy / "firmware" / "nnet_utils" / "nnet_sparse_lstm.h"
    kernel.write_text(BROKEN["no tripcount"][0])
    with pytest.raises(synth_check.SynthesisabilityError) as err:
        synth_check.check_project(copy)
    assert "rule 1: firmware/m.cpp: the top function is PIPELINEd" in str(err.value)
    assert "rule 2:" in str(err.value)


def _config(model, **layer):
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<16,6>")
    cfg["LayerName"]["lstm"].update({"Lanes": 4, **layer})
    return cfg


@pytest.mark.parametrize("edit, message", [
    ({"ReuseFactor": 4}, r"ReuseFactor=4 is not supported .*ReuseFactor 4 corresponds to Lanes = 4H/R = 8"),
    ({"ReuseFactor": 3}, r"ReuseFactor=3 .*Lanes must divide H = 8: valid Lanes \[1, 2, 4, 8\]"),
    ({"Strategy": "Latency"}, r"Strategy 'latency' is not supported .*'Resource'"),
])
def test_unsupported_layer_settings_refused(edit, message, tmp_path):
    model = _model()
    with pytest.raises(ValueError, match=message):
        hls4ml.converters.convert_from_keras_model(model, hls_config=_config(model, **edit), output_dir=str(tmp_path))


def test_unsupported_model_settings_refused(tmp_path):
    model = _model()
    cfg = _config(model)
    cfg["Model"]["PipelineStyle"] = "pipeline"
    with pytest.raises(ValueError, match=r"PipelineStyle 'pipeline' is not supported"):
        hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, output_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match=r"IOType 'io_stream' is not supported.*io_parallel"):
        hls4ml.converters.convert_from_keras_model(model, hls_config=_config(model), output_dir=str(tmp_path / "b"),
                                                   io_type="io_stream")
    ok = hls4ml.converters.convert_from_keras_model(model, hls_config=_config(model, Strategy="Resource"),
                                                    output_dir=str(tmp_path / "c"))
    assert ok.config.pipeline_style == "dataflow"


def test_tripcount_average_from_expected_densities(tmp_path):
    model = _model(units=8, n_in=3)
    hm = hls4ml.converters.convert_from_keras_model(
        model, hls_config=_config(model, ExpectedInputDensity=0.5, ExpectedStateDensity=0.25),
        output_dir=str(tmp_path))
    hm.write()
    params = (tmp_path / "firmware" / "parameters.h").read_text()
    # C = 4H/P = 8 chunks; (0.5 * 3 + 0.25 * 8) * 8 = 28; max (3 + 8) * 8 = 88
    assert "static const unsigned stream_avg = 28;" in params
    assert "static const unsigned stream_max = 88;" in params
    with pytest.raises(ValueError, match=r"ExpectedStateDensity must be a fraction .* got ExpectedStateDensity=1.5"):
        hls4ml.converters.convert_from_keras_model(model, hls_config=_config(model, ExpectedStateDensity=1.5),
                                                   output_dir=str(tmp_path / "x"))
