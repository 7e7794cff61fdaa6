"""`make bench PARTS=...`: rerunning some parts of the benchmark into the committed record (the parts
themselves are the hour-long `make bench`, not run here: `_run_part` is replaced by a recorder)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from pipeline import bench

RECORD = Path(__file__).resolve().parents[1] / "bench" / "results.json"


def test_parse_parts():
    assert bench.parse_parts(None) is None and bench.parse_parts("") is None
    assert bench.parse_parts("trained, training") == ("trained", "training")
    for bad in ("trained,trained", "trainde", "trained,,rtl"):
        with pytest.raises(ValueError, match=r"bench parts must be distinct names among \[.*'trained'.*got"):
            bench.parse_parts(bad)


def test_a_rerun_replaces_only_its_parts(tmp_path, monkeypatch):
    shutil.copy(RECORD, tmp_path / "results.json")
    before = json.loads(RECORD.read_text())
    new_trained = copy.deepcopy(before["trained"])
    (key,) = [k for k in new_trained["result"] if k.startswith("mnist_rows_demo/")]
    new_trained["result"][key]["speedup"] = 1.2345
    ran = []

    def fake(name):
        ran.append(name)
        return new_trained

    monkeypatch.setattr(bench, "_run_part", fake)
    bench.main(str(tmp_path), parts=("trained",))
    after = json.loads((tmp_path / "results.json").read_text())
    assert ran == ["trained"]
    assert after["trained"]["result"][key]["speedup"] == 1.2345
    for name in set(before) - {"trained", "reruns"}:
        assert after[name] == before[name], name  # the full run's parts and wall_s stay
    assert after["reruns"][-1]["parts"] == ["trained"]
    assert len(after.get("reruns", [])) == len(before.get("reruns", [])) + 1
    md = (tmp_path / "results.md").read_text()
    assert "1.23x" in md and "Rerun alone on" in md and ": trained" in md


def test_a_rerun_needs_a_record(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "_run_part", lambda name: pytest.fail("ran a part"))
    with pytest.raises(FileNotFoundError, match=r"no .*results.json to update; run the whole bench first"):
        bench.main(str(tmp_path), parts=("trained",))
    (tmp_path / "results.json").write_text(json.dumps({"trained": {}}))
    with pytest.raises(ValueError, match=r"lacks the parts \['accelerator'"):
        bench.main(str(tmp_path), parts=("trained",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
