"""`make synth` up to the line this machine cannot cross: without vitis_hls it stops with the command to
run elsewhere; with Vitis' report files in place (written here in Vitis' own formats) the csynth and
cosim latencies are read and set beside the model's per-sequence cycles, and the report shows them."""

from __future__ import annotations

import json

import pytest

from pipeline import report, synth

CSYNTH = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <UserAssignments><TargetClockPeriod>5.00</TargetClockPeriod></UserAssignments>
  <PerformanceEstimates>
    <SummaryOfTimingAnalysis><EstimatedClockPeriod>4.321</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <Best-caseLatency>1234</Best-caseLatency><Worst-caseLatency>130001</Worst-caseLatency>
      <Interval-min>1235</Interval-min><Interval-max>130002</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>12</BRAM_18K><DSP>64</DSP><FF>9000</FF><LUT>21000</LUT></Resources>
    <AvailableResources><BRAM_18K>5376</BRAM_18K><DSP>12288</DSP><FF>3456000</FF><LUT>1728000</LUT></AvailableResources>
  </AreaEstimates>
</profile>
"""
COSIM = """+------+--------+-----------------------+-----------------------+
| RTL  | Status |  Latency min avg max  |  Interval min avg max |
+------+--------+-----------------------+-----------------------+
|  VHDL|      NA|     NA|     NA|     NA|     NA|     NA|     NA|
|   Verilog|    Pass|  12001|  13500|  15012|  12002|  13501|  15013|
+------+--------+-----------------------+-----------------------+
"""


def _fake_project(root, name="m"):
    prj = root / name
    sol = prj / f"{name}_prj" / "solution1"
    (sol / "syn" / "report").mkdir(parents=True)
    (sol / "sim" / "report").mkdir(parents=True)
    (prj / "project.tcl").write_text(f'variable project_name\nset project_name "{name}"\nvariable backend\n'
                                     'set backend "vivado"\n')
    (prj / f"{name}_prj" / "hls.app").write_text('<project><solutions><solution name="solution1"/></solutions></project>')
    (sol / "syn" / "report" / f"{name}_csynth.xml").write_text(CSYNTH)
    (sol / "sim" / "report" / f"{name}_cosim.rpt").write_text(COSIM)
    return prj


def test_reports_are_read_and_set_beside_the_model(tmp_path):
    prj = _fake_project(tmp_path)
    rep = synth.read_reports(prj)
    assert rep["csynth"]["BestLatency"] == "1234" and rep["cosim"]["LatencyMax"] == "15012"
    emulate = {"sequence_cycles": {"sparse": {"min": 11000, "avg": 12345.5, "max": 14000}}}
    rec = synth.latency_beside_model(rep, emulate)
    assert rec["csynth_latency"] == {"best": 1234, "worst": 130001, "interval_min": 1235, "interval_max": 130002}
    assert rec["cosim_latency"] == {"min": 12001, "max": 15012, "status": "Pass"}
    assert rec["model_sequence_cycles_sparse"]["avg"] == 12345.5
    (line,) = report.synth_lines(json.loads(json.dumps(rec)))
    assert "csynth latency 1234..130001 cycles, cosim 12001..15012 cycles (Pass)" in line
    assert "11000..14000 cycles per sequence" in line


def test_missing_reports_give_empty_fields(tmp_path):
    prj = _fake_project(tmp_path)
    (prj / "m_prj" / "solution1" / "sim" / "report" / "m_cosim.rpt").unlink()
    rec = synth.latency_beside_model(synth.read_reports(prj), {})
    assert rec["cosim_latency"] == {"min": None, "max": None, "status": None}
    assert rec["csynth_latency"]["best"] == 1234


def test_synth_without_vitis_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "vitis_tool", lambda: None)
    proj = tmp_path / "hls" / "mnist_rows_demo" / "seed0"
    proj.mkdir(parents=True)
    (proj / "build_prj.tcl").write_text("# hls4ml\n")
    with pytest.raises(RuntimeError, match=r"needs AMD Vitis HLS .*vitis_hls -f build_prj.tcl \"reset=1 synth=1 csim=1 cosim=1"):
        synth.run("mnist_rows_demo", out=str(tmp_path / "out"), root=str(tmp_path / "hls"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(FileNotFoundError, match="run the hls stage first"):
        synth.run("mnist_rows_demo", out=str(tmp_path / "out"), root=str(tmp_path / "none"))
