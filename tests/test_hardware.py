"""Hardware catalog, user entries, local detection and calibration: offline and fast (a few seconds)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from efficiency import hardware
from efficiency.hardware import (
    CATALOG_FILE,
    KINDS,
    PEAK_DTYPES,
    UnknownHardwareError,
    add_user_hardware,
    get_hardware,
    load_catalog,
    load_hardware,
    user_hardware_path,
)
from efficiency.hardware.calibrate import SOURCE, calibrate
from efficiency.hardware.detect import environment_fingerprint, local_devices
from efficiency.paths import data_dir
from efficiency.specs import HardwareSpec

REQUIRED_IDS = {
    "v100-sxm2-32gb",
    "a100-40gb",
    "a100-80gb",
    "h100-sxm",
    "h200-sxm",
    "l4",
    "t4",
    "a10g",
    "l40s",
    "rtx-3090",
    "rtx-4090",
    "tpu-v4",
    "tpu-v5e",
    "m2-max",
    "epyc-9654",
    "jetson-agx-orin-64gb",
    "raspberry-pi-5",
}
FIELDS = {
    "id",
    "name",
    "kind",
    "peak_flops",
    "memory_bandwidth_bytes_per_s",
    "memory_bytes",
    "tdp_watts",
    "source",
    "source_note",
}
GIB = 2**30


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@pytest.fixture
def data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("EFFICIENCY_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def raw_entries() -> list[dict]:
    entries = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))
    assert isinstance(entries, list)
    return entries


def test_catalog_has_every_required_chip_once(raw_entries: list[dict]) -> None:
    ids = [entry["id"] for entry in raw_entries]
    assert len(ids) >= 16
    assert len(ids) == len(set(ids))
    assert REQUIRED_IDS <= set(ids)
    assert {"cpu", "gpu", "tpu", "soc", "edge"} <= {entry["kind"] for entry in raw_entries}


def test_catalog_schema_and_units(raw_entries: list[dict]) -> None:
    for entry in raw_entries:
        where = entry.get("id")
        assert FIELDS <= set(entry) <= FIELDS | {"cpu_cores"}, where
        assert re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", entry["id"]), where
        assert entry["kind"] in KINDS, where
        assert entry["peak_flops"] and set(entry["peak_flops"]) <= set(PEAK_DTYPES), where
        for dtype, value in entry["peak_flops"].items():
            assert is_number(value) and 1e9 <= value <= 1e16, (where, dtype, value)
        assert is_number(entry["memory_bandwidth_bytes_per_s"]), where
        assert 1e9 <= entry["memory_bandwidth_bytes_per_s"] <= 1e13, where
        assert is_number(entry["memory_bytes"]) and 1e9 <= entry["memory_bytes"] <= 1e12, where
        assert entry["tdp_watts"] is None or (is_number(entry["tdp_watts"]) and 1 <= entry["tdp_watts"] <= 1000), where
        assert entry["source"].startswith("https://"), where
        assert len(entry["source_note"]) > 40, where


def test_catalog_peaks_are_dense_and_ordered() -> None:
    """Sparse figures would double these; lower precision never runs slower than higher on these chips."""
    chips = {spec.id: spec for spec in load_catalog()}
    assert chips["a100-80gb"].peak_flops["bfloat16"] == 312e12
    assert chips["h100-sxm"].peak_flops["bfloat16"] == 989.5e12
    assert chips["l4"].peak_flops["int8"] == 242.5e12
    for spec in chips.values():
        peaks = spec.peak_flops
        for low, high in (
            ("tfloat32", "float32"),
            ("bfloat16", "float32"),
            ("float16", "float32"),
            ("int8", "bfloat16"),
        ):
            if low in peaks and high in peaks:
                assert peaks[low] >= peaks[high], (spec.id, low, high)


def test_derived_cpu_peaks_match_their_closed_forms() -> None:
    """cores x clock x FLOP/cycle, as the source notes say."""
    chips = {spec.id: spec for spec in load_catalog()}
    assert chips["epyc-9654"].peak_flops["float32"] == pytest.approx(96 * 2.4e9 * 32)
    assert chips["epyc-9654"].memory_bandwidth_bytes_per_s == pytest.approx(12 * 8 * 4.8e9)
    assert chips["raspberry-pi-5"].peak_flops["float32"] == pytest.approx(4 * 2.4e9 * 16)
    assert chips["raspberry-pi-5"].memory_bandwidth_bytes_per_s == pytest.approx(4 * 4267e6)
    assert chips["h200-sxm"].memory_bytes == 141 * GIB


def test_cpu_entries_state_the_cores_their_peak_counts(raw_entries: list[dict]) -> None:
    """A CPU's derived peak is cores x clock x FLOP/cycle: its entry names the cores (``cpu_cores``), as its source
    note states them, so the pages can say the figure assumes every core busy."""
    with_cores = {entry["id"]: entry for entry in raw_entries if "cpu_cores" in entry}
    assert {entry["id"] for entry in raw_entries if entry["kind"] == "cpu"} <= set(with_cores)
    assert {"raspberry-pi-5", "epyc-9654", "xeon-8480plus"} <= set(with_cores)
    for chip, entry in with_cores.items():
        cores = entry["cpu_cores"]
        assert isinstance(cores, int) and cores >= 1, chip
        assert f"{cores} cores" in entry["source_note"] or f"{cores} x " in entry["source_note"], chip
    chips = {spec.id: spec for spec in load_catalog()}
    assert chips["xeon-8480plus"].peak_flops["float32"] == pytest.approx(56 * 2.0e9 * 64)


@pytest.mark.parametrize("cores", [0, 2.5, True, "4"])
def test_a_cpu_cores_field_must_be_a_whole_count(cores: object) -> None:
    entry = {**json.loads(CATALOG_FILE.read_text(encoding="utf-8"))[0], "cpu_cores": cores}
    with pytest.raises(ValueError, match="cpu_cores must be a whole number of cores"):
        hardware.spec_from_dict(entry, "test")


def test_catalog_specs_fall_back_between_dtypes(data_folder: Path) -> None:
    v100 = get_hardware("v100-sxm2-32gb")
    assert isinstance(v100, HardwareSpec) and not v100.measured_here
    assert v100.peak_for("bfloat16") == v100.peak_flops["float16"]
    assert get_hardware("tpu-v5e").peak_for("float32") is not None


def test_data_dir_honours_the_environment(data_folder: Path) -> None:
    assert data_dir() == data_folder
    assert data_folder.is_dir()


def test_user_hardware_round_trip(data_folder: Path) -> None:
    mine = HardwareSpec(
        id="my-npu",
        name="My NPU board",
        kind="edge",
        peak_flops={"float16": 20e12, "int8": 40e12},
        memory_bandwidth_bytes_per_s=100e9,
        memory_bytes=16 * GIB,
        tdp_watts=25,
        source="https://example.org/npu.pdf",
        source_note="vendor sheet: 40 TOPS int8",
    )
    path = add_user_hardware(mine)
    assert path == user_hardware_path() and path.parent == data_folder
    assert json.loads(path.read_text(encoding="utf-8"))[0]["id"] == "my-npu"
    assert get_hardware("my-npu") == mine
    assert "my-npu" in {spec.id for spec in load_hardware()}
    assert "my-npu" not in {spec.id for spec in load_hardware(include_user=False)}

    updated = HardwareSpec(**{**mine.to_dict(), "memory_bytes": 32 * GIB})
    add_user_hardware(updated)
    assert [spec.id for spec in hardware.load_user_hardware()] == ["my-npu"]
    assert get_hardware("my-npu").memory_bytes == 32 * GIB
    assert not list(data_folder.glob("*.tmp")), "the atomic write left a temporary file"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": "a100-80gb"}, "belongs to the catalog"),
        ({"id": "local-cpu"}, "kept for calibrations"),
        ({"id": "Has Spaces"}, "lowercase slug"),
        ({"kind": "npu"}, "kind"),
        ({"peak_flops": {"fp8": 1e12}}, "peak_flops keys"),
        ({"peak_flops": {"float32": True}}, "number"),
    ],
)
def test_user_hardware_is_validated(data_folder: Path, changes: dict, message: str) -> None:
    fields = {
        "id": "my-chip",
        "name": "My chip",
        "kind": "gpu",
        "peak_flops": {"float32": 1e12},
        "memory_bandwidth_bytes_per_s": 1e11,
        "memory_bytes": 8 * GIB,
    }
    with pytest.raises(ValueError, match=message):
        add_user_hardware(HardwareSpec(**{**fields, **changes}))
    assert not user_hardware_path().exists()


def test_broken_user_file_is_reported_with_its_path(data_folder: Path) -> None:
    user_hardware_path().write_text('[{"id": "x"', encoding="utf-8")
    with pytest.raises(ValueError, match="hardware.json"):
        load_hardware()
    user_hardware_path().write_text('[{"id": "x", "name": "X"}]', encoding="utf-8")
    with pytest.raises(ValueError, match="missing field"):
        load_hardware()


def test_unknown_id_names_the_alternatives(data_folder: Path) -> None:
    with pytest.raises(UnknownHardwareError, match="a100-40gb, a100-80gb") as caught:
        get_hardware("a100")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError, match="rtx-4090"):
        get_hardware("rtx4090")
    assert get_hardware("H100-SXM").id == "h100-sxm"


def test_local_devices_has_the_cpu() -> None:
    devices = local_devices()
    cpu = devices[0]
    assert cpu["id"] == "cpu" and cpu["kind"] == "cpu" and cpu["name"]
    assert cpu["logical_cores"] >= cpu["physical_cores"] >= 1
    assert cpu["memory_bytes"] > 1e8
    assert all(device["id"] == "mps" or device["id"].startswith(("cpu", "cuda:")) for device in devices)


def test_environment_fingerprint_records_the_setup() -> None:
    fingerprint = environment_fingerprint(threads=3)
    assert fingerprint["threads"] == 3
    assert fingerprint["torch"] and fingerprint["python"] and fingerprint["os"] and fingerprint["cpu_model"]
    assert {"gpu", "transformers", "physical_cores", "logical_cores"} <= set(fingerprint)


def test_tiny_calibration_measures_caches_and_joins_the_catalog(data_folder: Path) -> None:
    began = time.perf_counter()
    spec = calibrate("cpu", threads=1, seconds_budget=1.0, sizes=(64, 128), copy_bytes=4 * 2**20)
    assert time.perf_counter() - began < 5
    assert spec.id == "local-cpu" and spec.measured_here and spec.source == SOURCE
    assert set(spec.peak_flops) == {"float32", "bfloat16"}
    assert all(value > 1e6 for value in spec.peak_flops.values())
    assert spec.memory_bandwidth_bytes_per_s > 1e7
    assert "n=128" in spec.source_note and "MiB" in spec.source_note

    began = time.perf_counter()
    assert calibrate("cpu", threads=1, seconds_budget=1.0, sizes=(64, 128)) == spec
    assert time.perf_counter() - began < 0.5, "the second call should come from the cache"
    assert get_hardware("local-cpu") == spec
    assert (data_folder / "calibration.json").exists()


def test_calibration_without_cache_writes_nothing(data_folder: Path) -> None:
    spec = calibrate(
        "cpu", threads=1, seconds_budget=0.5, sizes=(64,), copy_bytes=2**20, dtypes=("float32",), use_cache=False
    )
    assert set(spec.peak_flops) == {"float32"}
    assert not (data_folder / "calibration.json").exists()


def test_calibration_rejects_bad_arguments(data_folder: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        calibrate("tpu")
    with pytest.raises(ValueError, match="threads"):
        calibrate("cpu", threads=0)
    with pytest.raises(ValueError, match="dtypes"):
        calibrate("cpu", dtypes=("fp8",))
