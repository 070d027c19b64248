"""The Hardware page runs under AppTest with its defaults, draws its three charts and shows a ranking flip."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from efficiency.hardware import get_hardware

ROOT = Path(__file__).resolve().parent.parent


def test_hardware_page_defaults_draw_charts_and_a_flip(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    at = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.multiselect("hw_models").value) == 4
    assert at.multiselect("hw_chips").value == ["h100-sxm", "rtx-4090", "raspberry-pi-5"]  # no calibration here
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    assert len(charts) == 3
    assert all(fig["layout"]["title"]["text"] for fig in charts)
    captions = [c.value.replace("\\", "") for c in at.caption]  # as read: the page escapes markdown
    h100, pi = get_hardware("h100-sxm").name, get_hardware("raspberry-pi-5").name  # chips by name, not by id
    flip = next(text for text in captions if text.startswith(f"On {h100},"))
    assert "is faster than" in flip and f"on {pi}," in flip
    assert any("Estimated (roofline on datasheet figures)" in info.value for info in at.info)
    (table, *_) = at.dataframe
    assert table.value["estimated"].all() and len(table.value) == 12


def test_a_user_chip_added_with_the_form_is_saved_and_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    at = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=60).run()
    inputs = {t.label: t for t in at.text_input}
    inputs["Source (datasheet URL)"].input("https://example.org/my-npu.pdf")
    inputs["Id (lowercase, e.g. my-gpu)"].input("h100-sxm")  # a catalog id: refused
    next(b for b in at.button if b.label == "Add chip").click().run()
    assert any("belongs to the catalog" in e.value for e in at.error)
    {t.label: t for t in at.text_input}["Id (lowercase, e.g. my-gpu)"].input("mynpu")
    next(b for b in at.button if b.label == "Add chip").click().run()
    assert not at.exception and any("Added mynpu" in s.value for s in at.success), [e.value for e in at.error]
    saved = json.loads((tmp_path / "hardware.json").read_text())
    assert "mynpu" in json.dumps(saved)
    assert "mynpu" in at.run().multiselect("hw_chips").options  # listed from the next run on


def test_the_roofline_draws_what_this_machine_measured(tmp_path, monkeypatch):
    """A latency measured here at this workload (from the store) becomes a measured point on the roofline."""
    from efficiency.hardware.detect import cpu_model
    from efficiency.results import Result
    from efficiency.store.store import ResultStore

    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    workload = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}
    result = {
        "model": "distilbert-base-uncased",
        "workload": workload,
        "measured": True,
        "latency_ms": 80.0,
        "hardware": {
            "id": "local-cpu",
            "device": "cpu",
            "name": cpu_model(),
            "threads": 2,
            "environment": {"cpu_model": cpu_model()},  # this machine: the lookup checks it
        },
        "error": None,
    }
    env = {"cpu_model": "test cpu", "threads": 2, "torch": "2.13.0", "transformers": "x"}
    key = {"model": result["model"], "workload": workload, "metrics": "all", "hardware": "local-cpu", "env": env}
    ResultStore().put(Result.from_dict(result), key)
    at = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    roofline = json.loads(at.get("plotly_chart")[-1].proto.spec)
    (measured,) = [trace for trace in roofline["data"] if trace["name"].startswith("measured")]
    assert measured["text"] == ["DistilBERT-base (uncased)"]
