"""Hardware the dashboard can estimate for: a sourced datasheet catalog, user entries, and local measurements.

Three origins, one list, so that a page or the CLI never cares where a chip came from:

- ``chips.json`` beside this module: datasheet figures, dense peaks, each with its source URL and note;
- ``hardware.json`` in the data folder (:func:`efficiency.paths.data_dir`): chips a user added;
- ``calibration.json`` in the data folder: this machine as measured by :mod:`efficiency.hardware.calibrate`,
  marked ``measured_here``. It is read here without importing torch, so listing hardware stays fast.

All figures are raw SI: FLOP/s (int8: ops/s), bytes/s, bytes, watts. Datasheet "GB" of device memory is
taken as GiB, since that is what the devices report.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from efficiency.hardware.detect import cpu_model
from efficiency.paths import data_dir
from efficiency.specs import HardwareSpec

CATALOG_FILE = Path(__file__).with_name("chips.json")
USER_FILE_NAME = "hardware.json"
CALIBRATION_FILE_NAME = "calibration.json"
KINDS = ("gpu", "tpu", "cpu", "soc", "edge")
PEAK_DTYPES = ("float32", "tfloat32", "bfloat16", "float16", "int8")
LOCAL_ID_PREFIX = "local-"
LOCAL_CPU_ID = "local-cpu"  # this machine's CPU as calibrated (efficiency.hardware.calibrate)
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._+-]{0,63}$")
REQUIRED_FIELDS = ("id", "name", "kind", "peak_flops", "memory_bandwidth_bytes_per_s", "memory_bytes")
# A CPU's datasheet-derived peak (cores x clock x FLOP/cycle) counts every core; the catalog says how many, from
# the entry's own source note, so a page can say what the figure assumes. Not a HardwareSpec field: read apart,
# from the catalog only (catalog_cpu_cores); elsewhere it is checked and not used.
CPU_CORES_FIELD = "cpu_cores"
OPTIONAL_FIELDS = ("tdp_watts", "source", "source_note", "measured_here", CPU_CORES_FIELD)


class UnknownHardwareError(ValueError):
    """A hardware id that is in none of the catalog, the user file, or this machine's calibrations."""


def _require(condition: bool, message: str) -> None:
    """Bad data in a file or a form is a ValueError (the project's one error type for bad input)."""
    if not condition:
        raise ValueError(message)


def _check_number(where: str, name: str, value: Any) -> float:
    """A finite positive real number; JSON gives bools and strings too, and those must not pass as figures."""
    _require(
        isinstance(value, (int, float)) and not isinstance(value, bool),
        f"{where}: {name} must be a number, got {value!r}",
    )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive finite number, got {value!r}")
    return float(value)


def validate_spec(spec: HardwareSpec, where: str = "hardware") -> HardwareSpec:
    """Checks beyond ``HardwareSpec.__post_init__``: the id form, the kind, the dtype keys, the number types."""
    label = f"{where} {spec.id!r}"
    if not ID_PATTERN.match(spec.id):
        raise ValueError(f"{label}: id must be a lowercase slug (a-z, 0-9, '.', '_', '+', '-'; at most 64 characters)")
    if not spec.name.strip():
        raise ValueError(f"{label}: name must be set")
    if spec.kind not in KINDS:
        raise ValueError(f"{label}: kind {spec.kind!r} is not one of {', '.join(KINDS)}")
    unknown = sorted(set(spec.peak_flops) - set(PEAK_DTYPES))
    if unknown:
        raise ValueError(f"{label}: peak_flops keys {unknown} are not among {', '.join(PEAK_DTYPES)}")
    for dtype, value in spec.peak_flops.items():
        _check_number(label, f"peak_flops[{dtype!r}]", value)
    _check_number(label, "memory_bandwidth_bytes_per_s", spec.memory_bandwidth_bytes_per_s)
    _check_number(label, "memory_bytes", spec.memory_bytes)
    if spec.tdp_watts is not None:
        _check_number(label, "tdp_watts", spec.tdp_watts)
    return spec


def spec_from_dict(entry: Any, where: str) -> HardwareSpec:
    """One JSON entry -> a validated spec; every error names the file (``where``), the entry and the field."""
    _require(isinstance(entry, dict), f"{where}: each entry must be a JSON object, got {type(entry).__name__}")
    label = f"{where} entry {entry.get('id', '?')!r}"
    missing = [name for name in REQUIRED_FIELDS if name not in entry]
    if missing:
        raise ValueError(f"{label}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(entry) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise ValueError(f"{label}: unknown field(s) {', '.join(unknown)}")
    _require(isinstance(entry["peak_flops"], dict), f"{label}: peak_flops must be an object mapping dtype to FLOP/s")
    cores = entry.get(CPU_CORES_FIELD, 1)
    _require(
        isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1,
        f"{label}: {CPU_CORES_FIELD} must be a whole number of cores >= 1, got {cores!r}",
    )
    for name in ("id", "name", "kind", "source", "source_note"):
        _require(isinstance(entry.get(name, ""), str), f"{label}: {name} must be a string")
    spec = HardwareSpec(
        id=entry["id"],
        name=entry["name"],
        kind=entry["kind"],
        peak_flops={
            dtype: _check_number(label, f"peak_flops[{dtype!r}]", v) for dtype, v in entry["peak_flops"].items()
        },
        memory_bandwidth_bytes_per_s=_check_number(
            label, "memory_bandwidth_bytes_per_s", entry["memory_bandwidth_bytes_per_s"]
        ),
        memory_bytes=_check_number(label, "memory_bytes", entry["memory_bytes"]),
        tdp_watts=None if entry.get("tdp_watts") is None else _check_number(label, "tdp_watts", entry["tdp_watts"]),
        source=entry.get("source", ""),
        source_note=entry.get("source_note", ""),
        measured_here=bool(entry.get("measured_here", False)),
    )
    return validate_spec(spec, where)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); fix or delete the file") from exc


def write_json_atomic(path: Path, data: Any) -> None:
    """Write to a temporary file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary: Path | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            temporary = Path(handle.name)
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        raise


@lru_cache(maxsize=1)
def load_catalog() -> tuple[HardwareSpec, ...]:
    """The datasheet catalog, in file order, with ids checked to be unique."""
    entries = _read_json(CATALOG_FILE)
    _require(isinstance(entries, list), f"{CATALOG_FILE.name}: must hold a JSON list of hardware entries")
    specs = tuple(spec_from_dict(entry, CATALOG_FILE.name) for entry in entries)
    _check_unique(specs, CATALOG_FILE.name)
    return specs


def _check_unique(specs: tuple[HardwareSpec, ...] | list[HardwareSpec], where: str) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.id in seen:
            raise ValueError(f"{where}: the id {spec.id!r} appears twice")
        seen.add(spec.id)


def user_hardware_path() -> Path:
    """The user file, ``hardware.json`` in the data folder (it may not exist yet)."""
    return data_dir() / USER_FILE_NAME


def load_user_hardware() -> list[HardwareSpec]:
    """Entries a user added, read fresh on every call since another process (the UI form) may have written."""
    path = user_hardware_path()
    if not path.exists():
        return []
    entries = _read_json(path)
    _require(isinstance(entries, list), f"{path}: must hold a JSON list of hardware entries")
    specs = [spec_from_dict(entry, str(path)) for entry in entries]
    _check_unique(specs, str(path))
    return specs


def calibration_path() -> Path:
    """The calibration cache, ``calibration.json`` in the data folder (it may not exist yet)."""
    return data_dir() / CALIBRATION_FILE_NAME


def read_calibrations() -> dict[str, dict[str, Any]]:
    """Every cached calibration record, keyed by device, threads and machine (see ``calibrate``)."""
    path = calibration_path()
    if not path.exists():
        return {}
    data = _read_json(path)
    _require(
        isinstance(data, dict) and isinstance(data.get("entries"), dict),
        f"{path}: expected an object with an 'entries' mapping; delete the file to recalibrate",
    )
    return data["entries"]


def measured_hardware() -> list[HardwareSpec]:
    """This machine's cached calibrations, the most recent per id; other machines' records are ignored."""
    here = cpu_model()
    latest: dict[str, tuple[str, HardwareSpec]] = {}
    for key, record in read_calibrations().items():
        if record.get("cpu_model") != here:
            continue
        spec = spec_from_dict(record.get("spec"), f"{CALIBRATION_FILE_NAME} record {key!r}")
        stamp = str(record.get("measured_at", ""))
        if spec.id not in latest or stamp > latest[spec.id][0]:
            latest[spec.id] = (stamp, spec)
    return [spec for _, spec in sorted(latest.values(), key=lambda item: item[1].id)]


@dataclass(frozen=True)
class CpuAssumption:
    """How many cores and threads a CPU's peak figure stands for.

    A datasheet peak is cores x clock x FLOP/cycle: every core busy at once, one thread each (a second hardware
    thread per core shares the same FMA units, so it adds no peak). A calibration here measured what the threads
    it ran with achieve. A latency measured with fewer threads than the figure assumes is slower for that
    reason alone, which is why the pages say it."""

    threads: int
    cores: int | None = None  # datasheet figures: every core; a calibration ran on threads, not a core count
    measured_here: bool = False

    def describe(self) -> str:
        """ "all 4 cores at peak, 4 threads (one per core)" or "calibrated here with 1 thread"."""
        if self.measured_here:
            return f"calibrated here with {_threads_text(self.threads)}"
        return f"all {self.cores} cores at peak, {_threads_text(self.threads)} (one per core)"


def _threads_text(threads: int) -> str:
    return f"{threads} thread" + ("" if threads == 1 else "s")


@lru_cache(maxsize=1)
def catalog_cpu_cores() -> dict[str, int]:
    """Catalog id -> the cores its peak counts, for the entries whose figures are CPU cores' (``cpu_cores``)."""
    return {entry["id"]: entry[CPU_CORES_FIELD] for entry in _read_json(CATALOG_FILE) if CPU_CORES_FIELD in entry}


def local_calibrations(device: str = "cpu") -> dict[int, HardwareSpec]:
    """This machine's cached calibrations of ``device`` by the thread count they ran with, the newest per count."""
    here = cpu_model()
    newest: dict[int, tuple[str, HardwareSpec]] = {}
    for key, record in read_calibrations().items():
        threads = record.get("threads")
        if record.get("cpu_model") != here or record.get("device") != device or not isinstance(threads, int):
            continue
        stamp = str(record.get("measured_at", ""))
        if threads not in newest or stamp > newest[threads][0]:
            newest[threads] = (stamp, spec_from_dict(record.get("spec"), f"{CALIBRATION_FILE_NAME} record {key!r}"))
    return {threads: spec for threads, (_, spec) in sorted(newest.items())}


def cpu_assumption(spec: HardwareSpec) -> CpuAssumption | None:
    """The cores and threads behind a CPU figure: a catalog CPU's cores, or the threads a calibration here ran
    with; None for accelerators and for CPUs whose entry does not say (a user's own chip)."""
    if spec.measured_here and spec.kind == "cpu":
        threads = next((t for t, calibrated in local_calibrations().items() if calibrated == spec), None)
        return CpuAssumption(threads=threads, measured_here=True) if threads else None
    cores = catalog_cpu_cores().get(spec.id) if not spec.measured_here else None
    return CpuAssumption(threads=cores, cores=cores) if cores else None


def with_local_threads(
    chips: list[HardwareSpec], threads: int | None, calibrations: dict[int, HardwareSpec] | None = None
) -> tuple[list[HardwareSpec], bool]:
    """The chips with this machine's calibrated CPU (``local-cpu``) taken at ``threads``, the thread count of the
    run it is compared with; and whether that calibration exists (False: the chip is left as it was).
    ``calibrations``: :func:`local_calibrations`, read here when not given."""
    if threads is None:
        return list(chips), True
    wanted = (local_calibrations() if calibrations is None else calibrations).get(threads)
    swapped = [wanted if spec.id == LOCAL_CPU_ID and wanted is not None else spec for spec in chips]
    return swapped, wanted is not None


def load_hardware(include_user: bool = True, include_measured: bool = True) -> list[HardwareSpec]:
    """Catalog, then user entries, then this machine's measurements: every chip the dashboard can offer."""
    specs = list(load_catalog())
    if include_user:
        specs.extend(load_user_hardware())
    if include_measured:
        specs.extend(measured_hardware())
    _check_unique(specs, "hardware catalog + user file + calibrations")
    return specs


def close_ids(wanted: str, ids: list[str], limit: int = 5) -> list[str]:
    """Ids that contain the request, then ids that look like it: what the user most likely meant."""
    needle = wanted.strip().lower()
    containing = [known for known in ids if needle and needle in known]
    similar = difflib.get_close_matches(needle, ids, n=limit, cutoff=0.5)
    return list(dict.fromkeys(containing + similar))[:limit]


def get_hardware(hardware_id: str) -> HardwareSpec:
    """One chip by id (case-insensitive); an unknown id raises naming the closest ids."""
    specs = load_hardware()
    by_id = {spec.id: spec for spec in specs}
    key = hardware_id.strip().lower()
    if key in by_id:
        return by_id[key]
    ids = list(by_id)
    close = close_ids(key, ids)
    hint = f"did you mean {', '.join(close)}?" if close else f"known ids: {', '.join(ids)}"
    raise UnknownHardwareError(f"unknown hardware {hardware_id!r}; {hint}")


def add_user_hardware(spec: HardwareSpec) -> Path:
    """Validate and store a user's chip (replacing an earlier entry with the same id); returns the file.

    Catalog ids and the ``local-`` prefix are refused: a user entry must never shadow a datasheet or a
    measurement, or the dashboard would show someone's figures under a sourced name.
    """
    if not isinstance(spec, HardwareSpec):
        raise TypeError(f"add_user_hardware expects a HardwareSpec, got {type(spec).__name__}")
    validate_spec(spec, "user hardware")
    if spec.id in {known.id for known in load_catalog()}:
        raise ValueError(f"user hardware {spec.id!r}: this id belongs to the catalog; choose another id")
    if spec.id.startswith(LOCAL_ID_PREFIX):
        raise ValueError(f"user hardware {spec.id!r}: ids starting with {LOCAL_ID_PREFIX!r} are kept for calibrations")
    kept = [existing for existing in load_user_hardware() if existing.id != spec.id]
    path = user_hardware_path()
    write_json_atomic(path, [entry.to_dict() for entry in [*kept, spec]])
    return path


__all__ = [
    "KINDS",
    "LOCAL_CPU_ID",
    "PEAK_DTYPES",
    "CpuAssumption",
    "UnknownHardwareError",
    "add_user_hardware",
    "calibration_path",
    "catalog_cpu_cores",
    "cpu_assumption",
    "get_hardware",
    "load_catalog",
    "load_hardware",
    "load_user_hardware",
    "local_calibrations",
    "measured_hardware",
    "read_calibrations",
    "spec_from_dict",
    "user_hardware_path",
    "validate_spec",
    "with_local_threads",
    "write_json_atomic",
]
