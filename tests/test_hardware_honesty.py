"""Issue 18, item 5: the Hardware page compares measured points with the roof of the machine they ran on (calibrated
here at their thread count), never with another chip's datasheet roof; labels stay off each other, off the points
and inside the plot; pickers show chip names; CPU figures say the cores and threads they stand for."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from efficiency.analysis.hardware import (
    cpu_figures_note,
    estimate_table,
    latency_rows,
    with_assumptions,
    with_measured,
)
from efficiency.charts.hardware import latency_heatmap
from efficiency.charts.roofline import CHAR_WIDTH_EM, PLOT_PX, measured_points, roof, roofline_plot
from efficiency.charts.style import BASE_FONT_PX, caption
from efficiency.hardware import (
    CALIBRATION_FILE_NAME,
    LOCAL_CPU_ID,
    cpu_assumption,
    get_hardware,
    local_calibrations,
    with_local_threads,
)
from efficiency.hardware.detect import cpu_model
from efficiency.specs import HardwareSpec

ROOT = Path(__file__).resolve().parent.parent
GPU = HardwareSpec("big-gpu", "Big GPU", "gpu", {"float32": 60e12}, 3e12, 80 * 2**30)
# This machine as two calibrations would record it: 1 thread and (newer, faster) 2 threads.
HERE_1 = HardwareSpec(
    LOCAL_CPU_ID,
    "test cpu, 1 thread (measured here)",
    "cpu",
    {"float32": 40e9},
    9e9,
    2**34,
    None,
    "measured here by efficiency.hardware.calibrate",
    "threads 1",
    True,
)
HERE_2 = HardwareSpec(
    LOCAL_CPU_ID,
    "test cpu, 2 threads (measured here)",
    "cpu",
    {"float32": 75e9},
    11e9,
    2**34,
    None,
    "measured here by efficiency.hardware.calibrate",
    "threads 2",
    True,
)
WORKLOAD = {"batch_size": 1, "seq_len": 128, "dtype": "float32", "mode": "inference"}


def write_calibrations(folder: Path, *specs_by_threads: tuple[int, HardwareSpec, str]) -> None:
    """calibration.json as :mod:`efficiency.hardware.calibrate` writes it, for this machine's CPU."""
    entries = {
        f"cpu|threads={threads}|cpu={cpu_model()}": {
            "device": "cpu",
            "threads": threads,
            "cpu_model": cpu_model(),
            "gpu": None,
            "measured_at": stamp,
            "seconds": 1.0,
            "environment": {},
            "spec": spec.to_dict(),
        }
        for threads, spec, stamp in specs_by_threads
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CALIBRATION_FILE_NAME).write_text(json.dumps({"version": 1, "entries": entries}), encoding="utf-8")


@pytest.fixture
def data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("EFFICIENCY_DB", raising=False)
    return tmp_path


def estimate_row(model: str, hw: HardwareSpec, ms: float, ai: float) -> dict:
    return {
        "model": model,
        "hardware": hw.id,
        "estimated_latency_ms": ms,
        "bound": "memory",
        "fits": True,
        "arithmetic_intensity": ai,
        "attainable_flops_per_s": float(roof([ai], hw.peak_for("float32"), hw.memory_bandwidth_bytes_per_s)[0]),
        "workload": WORKLOAD,
        "estimated": True,
    }


# ---------------------------------------------------------------- what a CPU figure stands for


def test_cpu_figures_state_their_cores_and_threads() -> None:
    pi, epyc, h100 = (get_hardware(chip) for chip in ("raspberry-pi-5", "epyc-9654", "h100-sxm"))
    assert cpu_assumption(pi).describe() == "all 4 cores at peak, 4 threads (one per core)"
    assert (cpu_assumption(epyc).cores, cpu_assumption(epyc).threads) == (96, 96)
    assert cpu_assumption(h100) is None  # an accelerator's figure is the chip's, not a core count


def test_local_cpu_is_taken_at_the_thread_count_of_the_run(data_folder: Path) -> None:
    write_calibrations(data_folder, (1, HERE_1, "2026-01-01T00:00:00+00:00"), (2, HERE_2, "2026-02-01T00:00:00+00:00"))
    assert local_calibrations() == {1: HERE_1, 2: HERE_2}
    assert get_hardware(LOCAL_CPU_ID) == HERE_2  # the newest calibration is what the picker lists
    chips, found = with_local_threads([GPU, HERE_2], 1)
    assert found and chips == [GPU, HERE_1]
    assert cpu_assumption(chips[1]).describe() == "calibrated here with 1 thread"
    chips, found = with_local_threads([GPU, HERE_2], 3)  # never calibrated with 3 threads: left, and said so
    assert not found and chips == [GPU, HERE_2]


def test_latency_table_and_heatmap_say_what_cpu_figures_assume() -> None:
    pi = get_hardware("raspberry-pi-5")
    table = with_assumptions(
        estimate_table([estimate_row("bert", pi, 152.0, 20.0), estimate_row("bert", GPU, 1.0, 20.0)]), [pi, GPU]
    )
    measured = [
        {
            "model_id": "bert",
            "model": "bert",
            "hardware": "cpu (measured)",
            "latency_ms": 276.0,
            "how": "measured here",
            "threads": 1,
            "workload": WORKLOAD,
        }
    ]
    both = with_measured(table, measured)
    shown = latency_rows(both, [pi, GPU]).set_index("Hardware")["Cores and threads"]
    assert shown[pi.name] == "all 4 cores at peak, 4 threads (one per core)"  # chips by name, never by id
    assert shown["cpu (measured)"] == "1 thread, as run" and pd.isna(shown["Big GPU"])
    note = cpu_figures_note(both)
    assert note == (
        f"CPU figures stand for {pi.name}: all 4 cores at peak, 4 threads (one per core). "
        "Measured latencies ran with 1 thread."
    )
    assert note in caption(latency_heatmap(both))
    assert cpu_figures_note(with_assumptions(estimate_table([estimate_row("bert", GPU, 1.0, 20.0)]), [GPU])) is None


# ---------------------------------------------------------------- the roofline compares like with like


@pytest.fixture
def roofline_inputs() -> tuple[pd.DataFrame, pd.DataFrame]:
    models = {"bert": 20.0, "cnn": 8.0}
    table = estimate_table([estimate_row(m, GPU, 1.0, ai) for m, ai in models.items()])
    profiles = {m: {"name": m, "flops": 2e10, "arithmetic_intensity": ai} for m, ai in models.items()}
    rows = [{"model": "bert", "latency_ms": 1000.0, "threads": 1}, {"model": "cnn", "latency_ms": 500.0, "threads": 1}]
    return table, measured_points(rows, profiles)


def test_measured_points_are_compared_with_this_machines_roof_at_their_threads(data_folder, roofline_inputs) -> None:
    write_calibrations(data_folder, (1, HERE_1, "2026-01-01T00:00:00+00:00"))
    table, measured = roofline_inputs
    fig = roofline_plot(table, [GPU], measured, chip="big-gpu", measured_roof=HERE_1, roof_threads=1)
    achieved = measured["achieved_flops_per_s"].to_numpy()
    own_roof = roof(measured["arithmetic_intensity"], 40e9, 9e9)
    share = float(np.median(achieved / own_roof))
    text = caption(fig)
    assert f"reach {share:.0%} (median) of this machine's roof calibrated with the same threads" in text
    gpu_share = float(np.median(achieved / roof(measured["arithmetic_intensity"], 60e12, 3e12)))
    assert f"{gpu_share:.0%}" == "0%" and "reach 0%" not in text  # the old caption: this CPU against the GPU roof
    names = [trace.name for trace in fig.data]
    assert "this machine's roof: measured here with 1 thread (calibrated)" in names
    assert "Big GPU roof: estimated from datasheet" in names  # chips by name
    solid = [t.name for t in fig.data if t.mode == "lines" and t.line.dash == "solid"]
    assert solid == ["this machine's roof: measured here with 1 thread (calibrated)"]


def test_without_a_calibration_at_their_threads_measured_points_get_no_percentage(roofline_inputs) -> None:
    table, measured = roofline_inputs
    for kwargs in ({}, {"measured_roof": HERE_2, "roof_threads": 2}):  # none at all; one with other threads
        text = caption(roofline_plot(table, [GPU], measured, chip="big-gpu", **kwargs))
        assert "%" not in text
        assert "2 measured point(s) ran with 1 thread(s)" in text and "compared with no roof" in text


# ---------------------------------------------------------------- labels


def label_boxes(fig) -> tuple[dict[str, tuple[float, ...]], list[tuple[float, ...]]]:
    """Each annotation's box and each marker's box, in px of the plot the labels are placed for, computed from the
    figure alone (its axis ranges, the annotation's offset and anchors, the text length)."""
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    width, height = PLOT_PX

    def px(x: float, y: float) -> tuple[float, float]:
        return (x - x0) / (x1 - x0) * width, (y - y0) / (y1 - y0) * height

    boxes = {}
    for note in fig.layout.annotations:
        x, y = px(note.x, note.y)
        ax, ay = x + note.ax, y - note.ay
        w, h = CHAR_WIDTH_EM * BASE_FONT_PX * len(note.text), 1.3 * BASE_FONT_PX
        left = {"left": ax, "right": ax - w, "center": ax - w / 2}[note.xanchor]
        bottom = {"bottom": ay, "top": ay - h, "middle": ay - h / 2}[note.yanchor]
        boxes[note.text] = (left, bottom, left + w, bottom + h)
    markers = []
    for trace in fig.data:
        if trace.mode == "markers":
            radius = trace.marker.size / 2
            for x, y in zip(trace.x, trace.y):
                cx, cy = px(math.log10(x), math.log10(y))
                markers.append((cx - radius, cy - radius, cx + radius, cy + radius))
    return boxes, markers


def overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def test_labels_never_cover_a_point_or_each_other_and_stay_inside(data_folder) -> None:
    """Seven models crowded within a factor 2 of intensity, each estimated and measured: the case where labels
    beside their points (plotly's text positions) overlapped and the leftmost was cut at the axis."""
    models = {f"Model number {i}": ai for i, ai in enumerate(np.geomspace(6.0, 12.0, 7))}
    table = estimate_table([estimate_row(m, GPU, 1.0, ai) for m, ai in models.items()])
    profiles = {m: {"name": m, "flops": 2e10, "arithmetic_intensity": ai} for m, ai in models.items()}
    rows = [{"model": m, "latency_ms": 300.0 + 40 * i, "threads": 1} for i, m in enumerate(models)]
    fig = roofline_plot(table, [GPU, HERE_1], measured_points(rows, profiles), chip="big-gpu")
    boxes, markers = label_boxes(fig)
    assert sorted(boxes) == sorted(models)  # one label per model
    labels = list(boxes.values())
    for i, box in enumerate(labels):
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= PLOT_PX[0] and box[3] <= PLOT_PX[1], box
        assert all(overlap(box, marker) == 0 for marker in markers), box
        assert all(overlap(box, other) == 0 for other in labels[i + 1 :]), box
    assert {note.ax for note in fig.layout.annotations} != {13.0}  # crowded: not every label took the first place


# ---------------------------------------------------------------- the page


def put_measured(latency_ms: float, threads: int) -> None:
    from efficiency.results import Result
    from efficiency.store.store import ResultStore

    hardware = {
        "id": "local-cpu",
        "device": "cpu",
        "name": cpu_model(),
        "threads": threads,
        "environment": {"cpu_model": cpu_model()},
    }
    result = {
        "model": "distilbert-base-uncased",
        "workload": WORKLOAD,
        "measured": True,
        "latency_ms": latency_ms,
        "hardware": hardware,
        "error": None,
    }
    env = {"cpu_model": cpu_model(), "threads": threads, "torch": "2.13.0", "transformers": "x"}
    key = {"model": result["model"], "workload": WORKLOAD, "metrics": "all", "hardware": "local-cpu", "env": env}
    ResultStore().put(Result.from_dict(result), key)


def hardware_page(chips: list[str]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages/5_Hardware.py"), default_timeout=120)
    at.session_state["hw_models"] = ["distilbert-base-uncased"]
    at.session_state["hw_chips"] = chips
    return at.run()


def test_page_compares_a_run_with_the_calibration_at_its_threads(data_folder) -> None:
    write_calibrations(data_folder, (1, HERE_1, "2026-01-01T00:00:00+00:00"), (2, HERE_2, "2026-02-01T00:00:00+00:00"))
    put_measured(80.0, threads=1)
    at = hardware_page(["t4", "raspberry-pi-5", LOCAL_CPU_ID])
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert not at.warning, [w.value for w in at.warning]
    options = at.multiselect("hw_chips").options
    assert "NVIDIA T4" in options and "t4" not in options  # names, not bare ids
    assert "Raspberry Pi 5 · all 4 cores at peak" in options
    assert "This CPU, calibrated (1 or 2 threads)" in options  # the run's threads pick one ...
    table = at.dataframe[0].value.set_index("Hardware")
    assert table.loc[HERE_1.name, "Cores and threads"] == "calibrated here with 1 thread"  # ... the run's is used
    pi_name = get_hardware("raspberry-pi-5").name  # the table names chips as the pickers do, never by id
    assert table.loc[pi_name, "Cores and threads"] == "all 4 cores at peak, 4 threads (one per core)"
    assert not {"t4", "raspberry-pi-5", LOCAL_CPU_ID} & set(table.index)
    roofline = json.loads(at.get("plotly_chart")[-1].proto.spec)
    text = roofline["layout"]["meta"]["caption"]
    assert "Measured here with 1 thread, the models reach" in text and "75 GFLOP/s" not in text
    assert "40 GFLOP/s peak at float32" in text  # HERE_1's figures, not the newer 2-thread calibration's
    pi = "Raspberry Pi 5 · all 4 cores at peak"
    assert at.selectbox("hw_roof_chip").options == ["NVIDIA T4", pi, "test cpu, 1 thread (measured here)"]


def test_page_says_when_no_calibration_matches_the_runs_threads(data_folder) -> None:
    write_calibrations(data_folder, (2, HERE_2, "2026-02-01T00:00:00+00:00"))
    put_measured(80.0, threads=1)
    at = hardware_page(["t4", LOCAL_CPU_ID])
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    (warning,) = at.warning
    assert "calibrated with 2 threads, but the runs measured here used 1" in warning.value
    assert any(button.label.startswith("Calibrate this machine with 1 thread") for button in at.button)
    roofline = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert "compared with no roof" in roofline["layout"]["meta"]["caption"]
    assert "%" not in roofline["layout"]["meta"]["caption"]


def test_the_calibrate_button_gives_the_roofline_this_machines_roof_at_the_runs_threads(data_folder, monkeypatch):
    """Pressing it calibrates with the run's thread count (a fake calibration here: the real one takes 10 s) and
    the page then compares the measured point with that roof, local-cpu picked."""
    import efficiency.hardware.calibrate as calibration

    asked = []

    def fake_calibrate(device: str, threads: int) -> HardwareSpec:
        asked.append((device, threads))
        write_calibrations(data_folder, (1, HERE_1, "2026-03-01T00:00:00+00:00"))
        return HERE_1

    monkeypatch.setattr(calibration, "calibrate", fake_calibrate)
    put_measured(80.0, threads=1)
    at = hardware_page(["t4"])
    (button,) = [b for b in at.button if b.label.startswith("Calibrate this machine with 1 thread")]
    button.click().run()
    assert asked == [("cpu", 1)]
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert LOCAL_CPU_ID in at.multiselect("hw_chips").value
    text = json.loads(at.get("plotly_chart")[-1].proto.spec)["layout"]["meta"]["caption"]
    assert "Measured here with 1 thread, the models reach" in text and "40 GFLOP/s peak at float32" in text


def test_a_broken_calibration_file_is_said_once_and_the_measured_points_get_no_roof(data_folder) -> None:
    (data_folder / CALIBRATION_FILE_NAME).write_text("{not json", encoding="utf-8")
    put_measured(80.0, threads=1)
    at = hardware_page(["t4"])
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert [w.value for w in at.warning if "fix or delete the file" in w.value], [w.value for w in at.warning]
    text = json.loads(at.get("plotly_chart")[-1].proto.spec)["layout"]["meta"]["caption"]
    assert "compared with no roof" in text and "%" not in text
