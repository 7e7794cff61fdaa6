"""Place and route on a Lattice ECP5 (pipeline/rtl/pnr.py): the report parser on a real nextpnr report,
the fit refusal before any tool runs, the latency arithmetic, and (slow) a tiny layer through Yosys
synth_ecp5, nextpnr-ecp5 and ecppack in both builds, plus the same layer with its multipliers'
registers left out, which must measure a lower Fmax (the timing figures respond to the design).

tests/data/nextpnr_ecp5_report.json is nextpnr-ecp5 0.11.1's ``--report`` of the sparse-capable build
of this file's tiny layer (n_in 3, H 8, P 2, T 4; LFE5U-85F, CABGA381, speed 6, 150 MHz, seed 1),
written by `pnr.place_and_route`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from _chain import build_model, draw, make_inputs

from pipeline.hls.project import convert
from pipeline.rtl import pnr, sim
from pipeline.rtl.generate import generate_layer

DATA = Path(__file__).parent / "data"


def test_report_parser_on_a_real_nextpnr_report():
    raw = json.loads((DATA / "nextpnr_ecp5_report.json").read_text())
    got = pnr.parse_report(DATA / "nextpnr_ecp5_report.json")
    (clk,) = raw["fmax"]  # the one clock, named after the pin it enters through
    assert got["clock"] == clk and "clk" in clk
    assert got["fmax_mhz"] == pytest.approx(raw["fmax"][clk]["achieved"], abs=0.01)
    # the register-to-register path of that clock, not the pin paths (<async>) beside it
    edge = f"posedge {clk}"
    (path,) = [p["path"] for p in raw["critical_paths"] if p["from"] == edge and p["to"] == edge]
    crit = got["critical_path"]
    assert crit["from"] == path[0]["from"]["cell"] and crit["to"] == path[-1]["to"]["cell"]
    routing = sum(s["delay"] for s in path if s["type"] == "routing")
    total = sum(s["delay"] for s in path)
    assert crit["routing_ns"] == pytest.approx(routing, abs=1e-3)
    assert crit["logic_ns"] + crit["routing_ns"] == pytest.approx(total, abs=2e-3)
    # a post-route Fmax is at most 1000 / (critical path ns): the slowest path is the one reported
    assert got["fmax_mhz"] <= 1000 / crit["total_ns"] + 0.5
    for kind in ("DP16KD", "MULT18X18D", "TRELLIS_COMB", "TRELLIS_FF"):
        assert got["utilisation"][kind] == {"used": raw["utilization"][kind]["used"],
                                             "available": raw["utilization"][kind]["available"]}
    with pytest.raises(RuntimeError, match="no single Fmax for the clock 'clk'"):
        pnr.parse_report({"fmax": {"a": {"achieved": 1, "constraint": 1}}, "critical_paths": [], "utilization": {}})


def test_latency_by_hand():
    # 3 sequences of 10 steps: 9,000 sparse cycles on the sparse-capable build at 150 MHz, 45,000 dense on
    # the dense-only build at 160 MHz
    lat = pnr.latency({"sparse": (9000, 3), "dense_only": (45000, 3)}, {"sparse-capable": 150.0, "dense-only": 160.0}, 10)
    assert lat["sparse_us_per_sequence"] == pytest.approx(3000 / 150)  # 20 us
    assert lat["dense_us_per_sequence"] == pytest.approx(15000 / 160)  # 93.75 us
    assert lat["sparse_us_per_step"] == pytest.approx(2.0) and lat["dense_us_per_step"] == pytest.approx(9.375)
    assert lat["cycle_speedup"] == 5.0 and lat["time_speedup"] == pytest.approx(93.75 / 20)
    assert lat["fmax_ratio_sparse_over_dense"] == pytest.approx(150 / 160)


def _tiny(tmp_path, units=8, lanes=2, n_in=3, steps=4, n=3):
    c = draw("pnr_tiny", 61, slow=False, units=(units,), n_in=n_in, steps=steps, lanes=lanes, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.3,), return_sequences=False, hidden=0, head=0,
             prune_last=(True,))
    hls_model = convert(build_model(c), c.hls(), tmp_path / "ir")
    x = make_inputs(np.random.RandomState(7), n, steps, n_in)
    return hls_model, x


def test_a_layer_that_does_not_fit_is_refused_before_any_tool_runs(tmp_path, monkeypatch):
    hls_model, x = _tiny(tmp_path, units=64, lanes=64, n_in=3, steps=2, n=1)
    (case,) = sim.emulate_layers(hls_model, x)
    layer = generate_layer(case.spec, tmp_path / "l")
    est = pnr.estimate(layer)
    # by hand: 64 lanes of one 16 x 16 MAC, f*c on two multipliers (18 x 24), i*g and o*tanh(c) one each
    assert est["MULT18X18D"] == 64 * (1 + 2 + 1 + 1) == 320
    # 1024-entry tables: two sigmoid copies and one tanh copy a lane, one DP16KD each
    assert est["DP16KD_tables"] == 64 * 3
    ran = []
    monkeypatch.setattr(pnr.subprocess, "run", lambda *a, **k: ran.append(a) or (_ for _ in ()).throw(AssertionError))
    with pytest.raises(pnr.FitError) as err:
        pnr.check_fit(layer, pnr.device("LFE5U-85F"))
    msg = str(err.value)
    assert "320 MULT18X18D multipliers against the part's 156" in msg
    assert "DP16KD block RAMs" in msg and "against the part's 208" in msg
    # the nearest lane count that fits, by the same arithmetic: 16 lanes -> 80 multipliers, 48 + 2 + 4 RAMs
    assert "16 lanes would fit ([fpga] lanes = 16)" in msg
    with pytest.raises(pnr.FitError):
        pnr.run_model(hls_model, x, tmp_path / "p")  # the same refusal, before any simulation or tool
    assert ran == [] and not (tmp_path / "p" / layer.module / "obj_skip").exists()
    with pytest.raises(ValueError, match="unknown ECP5 part 'LFE5U-12F'"):
        pnr.device("LFE5U-12F")


@pytest.mark.slow
def test_tiny_layer_synthesis_place_and_route_and_bitstream(tmp_path):
    """Both builds of a tiny layer: pnr.json's figures, a bitstream each, the latency from the cycles
    measured in Verilator on the very Verilog that was placed."""
    hls_model, x = _tiny(tmp_path)
    report = pnr.run_model(hls_model, x, tmp_path / "pnr", freq_mhz=150, seeds=(1,), log=lambda m: None)
    (la,) = report["layers"]
    assert la["check"] == "equal" and la["lanes"] == 2 and la["full_design"]
    for build in pnr.BUILDS:
        best = la["builds"][build]["best"]
        assert 30 < best["fmax_mhz"] < 500
        bit = Path(best["bitstream"])
        assert bit.is_file() and bit.stat().st_size == best["bitstream_bytes"] > 100_000
        assert best["utilisation"]["MULT18X18D"]["used"] == la["fit"]["MULT18X18D"] == 2 * 5
        assert best["utilisation"]["DP16KD"]["used"] == la["fit"]["DP16KD"]
        assert best["critical_path"]["total_ns"] > 0 and best["synthesis"]["LUT4"] > 0
    cyc = la["measured_cycles"]
    lat = la["latency"]
    assert lat["sparse_us_per_sequence"] == pytest.approx(cyc["sparse"]["per_sequence"] / la["fmax_mhz"]["sparse-capable"])
    assert lat["dense_us_per_sequence"] == pytest.approx(cyc["dense_only"]["per_sequence"] / la["fmax_mhz"]["dense-only"])
    assert report["tools"]["yosys"].startswith("Yosys") and "nextpnr" in report["tools"]["nextpnr"]
    assert re.match(r"Project Trellis ecppack Version \S+$", report["tools"]["ecppack"]), report["tools"]


@pytest.mark.slow
def test_an_unregistered_multiplier_measures_a_lower_fmax(tmp_path):
    """The same layer with its ECP5 multipliers built from `*` between fabric registers (no DSP
    registers): nextpnr must see the slower path, and name a multiplier on it."""
    hls_model, x = _tiny(tmp_path)
    (case,) = sim.emulate_layers(hls_model, x)
    dev = pnr.device("LFE5U-85F")
    fmax = {}
    for variant in ("registered", "unregistered"):
        layer = generate_layer(case.spec, tmp_path / variant)
        if variant == "unregistered":
            mul = layer.directory / "skiplstm_mul.v"
            text = mul.read_text()
            text = text.replace("if (W_W <= 18) begin : g_one", "if (0) begin : g_one")
            text = text.replace("end else if (N_W <= 18 && W_W <= 35) begin : g_two", "end else if (0) begin : g_two")
            assert text.count("if (0)") == 2
            mul.write_text(text)
        res = pnr.place_and_route(layer, dev, "CABGA381", 6, 150, builds=("sparse-capable",))
        fmax[variant] = res["builds"]["sparse-capable"]
    assert fmax["unregistered"]["fmax_mhz"] < fmax["registered"]["fmax_mhz"]
    assert any("MULT18X18D" in c or "u_m" in c for c in fmax["unregistered"]["critical_path"]["cells"])
