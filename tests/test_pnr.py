"""Place and route on a Lattice ECP5 (pipeline/rtl/pnr.py): the report parser on a real nextpnr report,
the fit refusal before any tool runs, the latency arithmetic, and (slow) a tiny layer through Yosys
synth_ecp5, nextpnr-ecp5 and ecppack in both builds, plus the same layer with its multipliers'
registers left out, which must measure a lower Fmax (the timing figures respond to the design).

tests/data/nextpnr_ecp5_report.json is nextpnr-ecp5 0.11.1's ``--report`` of the sparse-capable build
of this file's tiny layer (n_in 3, H 8, P 2, T 4; LFE5U-85F, CABGA381, speed 6, 150 MHz, seed 1),
written by `pnr.place_and_route`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from _chain import build_model, draw, make_inputs

from pipeline.hls.project import convert
from pipeline.layers import SparseStateLSTM
from pipeline.rtl import pnr, sim
from pipeline.rtl.generate import generate_layer
from pipeline.weight_pruning import column_balanced_mask

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
    assert "weight_sparse_us_per_sequence" not in lat
    # the weight-sparse engine: 3000 cycles over 3 sequences at 125 MHz -> 8 us, against 93.75 us dense
    lat = pnr.latency({"sparse": (9000, 3), "dense_only": (45000, 3), "weight_sparse": (3000, 3)},
                      {"sparse-capable": 150.0, "dense-only": 160.0, "weight-sparse": 125.0}, 10)
    assert lat["weight_sparse_us_per_sequence"] == pytest.approx(8.0) and lat["weight_sparse_us_per_step"] == pytest.approx(0.8)
    assert lat["weight_sparse_cycle_speedup"] == 15.0 and lat["weight_sparse_time_speedup"] == pytest.approx(93.75 / 8)
    assert lat["time_speedup"] == pytest.approx(93.75 / 20)  # the state-only figures unchanged beside it


def _tiny(tmp_path, units=8, lanes=2, n_in=3, steps=4, n=3, weight_sparsity=0.0):
    c = draw("pnr_tiny", 61, slow=False, units=(units,), n_in=n_in, steps=steps, lanes=lanes, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.3,), return_sequences=False, hidden=0, head=0,
             prune_last=(True,))
    model = build_model(c)
    if weight_sparsity:  # column-balanced at the layer's lanes (K of each lane's C = 4H / P rows a column)
        layer = next(la for la in model.layers if isinstance(la, SparseStateLSTM))
        w = layer.get_weights()
        w[0], w[1] = (m * column_balanced_mask(m, lanes, weight_sparsity) for m in w[:2])
        layer.set_weights(w)
    hls_model = convert(model, c.hls(), tmp_path / "ir")
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
    """The three builds of a tiny layer at 75% column-balanced weight sparsity (sparse-capable, dense-only
    and the weight-sparse engine, K = 4 of C = 16): pnr.json's figures, a bitstream each, the latency from
    the cycles measured in Verilator on the very Verilog that was placed."""
    hls_model, x = _tiny(tmp_path, weight_sparsity=0.75)
    report = pnr.run_model(hls_model, x, tmp_path / "pnr", freq_mhz=150, seeds=(1,), log=lambda m: None,
                           weight_sparse=True)
    (la,) = report["layers"]
    assert la["check"] == "equal" and la["lanes"] == 2 and la["full_design"]
    assert set(la["builds"]) == {*pnr.BUILDS, "weight-sparse"} and la["weight_sparse"]["weight_chunks"] == 4
    ws = la["builds"]["weight-sparse"]["best"]
    assert 30 < ws["fmax_mhz"] < 500 and Path(ws["bitstream"]).is_file()
    assert Path(ws["bitstream"]).parent.name.endswith("_ws")  # the weight-sparse engine's own Verilog
    # its ROMs hold 4 (value, row) pairs a column instead of 16 weights (words of 2 x 22 bits: two tiles wide, so
    # at this size more block RAMs than the dense engine's, not fewer): placed as the generator counts them
    assert ws["utilisation"]["DP16KD"]["used"] == la["weight_sparse"]["fit"]["DP16KD"]
    cyc, lat, f = la["measured_cycles"], la["latency"], la["fmax_mhz"]
    assert cyc["weight_sparse"]["total"] < cyc["sparse"]["total"] < cyc["dense_only"]["total"]
    assert lat["weight_sparse_us_per_sequence"] == pytest.approx(cyc["weight_sparse"]["per_sequence"] / f["weight-sparse"])
    assert lat["weight_sparse_time_speedup"] == pytest.approx(lat["dense_us_per_sequence"] / lat["weight_sparse_us_per_sequence"])
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


def test_a_weight_sparse_engine_that_alone_fits_is_placed_alone(tmp_path, monkeypatch):
    """A part with room for the weight-sparse engine's ROMs (KE pairs a column) but not for the dense
    ones: the dense-weight builds are simulated (their cycles stay the reference) and not placed, the
    weight-sparse engine is; without the weight-sparse engine the same layer is refused. The place and
    route itself is stubbed here (the slow test above runs it)."""
    hls_model, x = _tiny(tmp_path, units=64, lanes=2, steps=3, n=2, weight_sparsity=0.75)
    (case,) = sim.emulate_layers(hls_model, x)
    dense = pnr.estimate(generate_layer(case.spec, tmp_path / "d"))
    ws = pnr.estimate(generate_layer(case.spec.weight_sparse(), tmp_path / "w"))
    assert ws["DP16KD_weights"] < dense["DP16KD_weights"]
    small = dataclasses.replace(pnr.device("LFE5U-85F"), dp16kd=ws["DP16KD"])
    # the rtl stage's fit line (no files, no tools) agrees with the generated layers, also at other lanes,
    # where the weight-sparse engine's KE is what the weights need there (balanced at 2 lanes, not at 4: K >= 16 of 64)
    assert pnr.fit_summary(case.spec.weight_sparse(), small)["fits"]
    assert not pnr.fit_summary(case.spec, small)["fits"]
    at4 = pnr.fit_summary(case.spec.weight_sparse(), small, lanes=4)
    spec4 = dataclasses.replace(case.spec, lanes=4).weight_sparse()
    assert 16 <= spec4.weight_chunks < 64 and at4["estimate"] == pnr.estimate(generate_layer(spec4, tmp_path / "w4"))
    monkeypatch.setattr(pnr, "device", lambda name: small)
    placed = []

    def fake_pnr(layer, dev, package, speed, freq_mhz, seed=1, builds=pnr.BUILDS, timeout=0):
        pnr.check_fit(layer, dev)
        placed.append((layer.module, tuple(builds)))
        bit = layer.directory / "fake.bit"
        bit.write_bytes(b"bit")
        return {"fit": pnr.estimate(layer), "tools": {"nextpnr": "stub"},
                "builds": {b: {"fmax_mhz": 100.0, "bitstream": str(bit), "utilisation": {}, "synthesis": {},
                                    "critical_path": {}} for b in builds}}

    monkeypatch.setattr(pnr, "place_and_route", fake_pnr)
    with pytest.raises(pnr.FitError, match="does not fit the LFE5U-85F"):
        pnr.run_model(hls_model, x, tmp_path / "refused", weight_sparse=False, log=lambda m: None)
    assert placed == []
    report = pnr.run_model(hls_model, x, tmp_path / "p", weight_sparse=True, log=lambda m: None)
    (la,) = report["layers"]
    assert placed == [(la["weight_sparse"]["module"], ("sparse-capable",))]
    assert set(la["builds"]) == {"weight-sparse"} and set(la["refused"]) == set(pnr.BUILDS)
    assert "DP16KD block RAMs" in la["refused"]["dense-only"]
    cyc, lat = la["measured_cycles"], la["latency"]
    assert cyc["weight_sparse"]["total"] < cyc["sparse"]["total"] < cyc["dense_only"]["total"]  # all three simulated
    assert lat["weight_sparse_us_per_sequence"] == pytest.approx(cyc["weight_sparse"]["per_sequence"] / 100.0)
    assert lat["weight_sparse_cycle_speedup"] == pytest.approx(cyc["dense_only"]["total"] / cyc["weight_sparse"]["total"])
    assert "time_speedup" not in lat and "weight_sparse_time_speedup" not in lat  # no clock for the unplaced builds
    from pipeline.report import pnr_lines

    text = "\n".join(pnr_lines(report))
    assert "| not placed | not placed |" in text and "dense-only not placed" in text
    assert "ecp5_weight_sparse_seed1.bit" in text and "ecp5_dense_only" not in text
