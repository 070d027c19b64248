"""Numbers as text with their units: the one formatter of the project (CLI tables, pages, charts, reports).

Values stay raw inside (counts, bytes, ms) and become text only here, at the edge. Bytes are binary and
labelled so (1 KiB = 2^10 B, 1 MiB = 2^20 B, 1 GiB = 2^30 B), as allocators and OS tools report memory;
counts, FLOPs and rates take SI prefixes (1 GFLOPs = 1e9 FLOPs). Anything missing prints as "n/a".
"""

from __future__ import annotations

import math

KIB, MIB, GIB, TIB = 2**10, 2**20, 2**30, 2**40
_SI = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((2**60, "EiB"), (2**50, "PiB"), (TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB"))
BYTE_UNITS = ("B", "bytes")  # unit names that scale by powers of 1024 in ``scale``


def _missing(value: object) -> bool:
    """None, NaN, infinite or not a number: nothing to print."""
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def significant(value: float) -> str:
    """Three significant digits without trailing zeros, never an exponent: 22.3, 110, 1.2, 1500."""
    text = f"{value:.3g}"
    return f"{value:.0f}" if "e+" in text else text


def _prefixed(value: float, steps: tuple[tuple[float, str], ...], unit: str, space: bool) -> str:
    for factor, prefix in steps:
        if abs(value) >= factor:
            return f"{significant(value / factor)} {prefix}{' ' if space else ''}{unit}"
    return f"{significant(value)} {unit}".rstrip()


def si(value: float | None, unit: str) -> str:
    """1.2345e10, "FLOPs" -> "12.3 GFLOPs"; small values keep their plain form."""
    return "n/a" if _missing(value) else _prefixed(float(value), _SI, unit, space=False)


def count(value: float | None, unit: str) -> str:
    """Counts with a spaced unit word: "110 M params", "12.4 k items/s", "81 items/s"."""
    return "n/a" if _missing(value) else _prefixed(float(value), _SI, unit, space=True)


def params(value: float | None) -> str:
    """Parameter counts, everywhere: "110 M params", "1.2 B params" (B for billion, as papers write "175B")."""
    return (
        si(value, "params")
        .replace(" kparams", " k params")
        .replace("Mparams", "M params")
        .replace("Gparams", "B params")
        .replace("Tparams", "T params")
    )


def flops(value: float | None) -> str:
    """FLOPs (1 multiply-add = 2 FLOPs): "22.3 GFLOPs"."""
    return si(value, "FLOPs")


def flops_per_s(value: float | None) -> str:
    return si(value, "FLOP/s")


def rate(value: float | None, unit: str) -> str:
    return si(value, unit)


def nbytes(value: float | None) -> str:
    """Binary units for byte counts (1 GiB = 2^30 bytes), as allocators and OS tools report: "1.2 GiB"."""
    if _missing(value):
        return "n/a"
    value = float(value)  # type: ignore[arg-type]
    if abs(value) < KIB:
        return f"{value:.0f} B"
    return _prefixed(value, _BINARY, "", space=False)


def duration(value_ms: float | None) -> str:
    """A duration given in ms, everywhere (CLI, pages, charts, reports): "12.4 ms", "850 µs", "4.1 s"."""
    if _missing(value_ms):
        return "n/a"
    value = float(value_ms)  # type: ignore[arg-type]
    if abs(value) >= 1000:
        return f"{significant(value / 1000)} s"
    if 0 < abs(value) < 1:
        return f"{significant(value * 1000)} µs"
    return f"{significant(value)} ms"


def ratio(value: float | None) -> str:
    """A ratio short enough for a sentence, with enough digits that it never reads as "1x": "3.1x", "0.996x"."""
    if _missing(value):
        return "n/a"
    value = float(value)  # type: ignore[arg-type]
    if value >= 100:
        return f"{value:.0f}x"
    digits = 3 if abs(value - 1) < 0.05 else 2
    return f"{value:.{digits}g}x"


def times(value: float | None) -> str:
    """A ratio of two close values, for verdicts: "3.4x", and "1.00x" (not "0.996x") within 5% of one."""
    if _missing(value):
        return "n/a"
    value = float(value)  # type: ignore[arg-type]
    return f"{value:.2f}x" if abs(value - 1) < 0.05 else ratio(value)


def percent(value: float | None) -> str:
    return "n/a" if _missing(value) else f"{value:+.1%}"


def scale(typical: float | None, unit: str) -> tuple[float, str]:
    """One factor and unit label for a column or an axis of values like ``typical``, so the values stay numbers.

    Bytes ("B" or "bytes") scale by powers of 1024: (2**30, "GiB"); "ms" stays in ms; anything else takes the
    SI prefix before ``unit``: (1e9, "GFLOPs"), (1e6, "M params") for " params"."""
    if unit == "ms" or _missing(typical):
        return 1.0, "B" if unit in BYTE_UNITS else unit
    size = abs(float(typical))  # type: ignore[arg-type]
    if unit in BYTE_UNITS:
        return next(((float(f), name) for f, name in _BINARY if size >= f), (1.0, "B"))
    return next(((f, f"{p}{unit}") for f, p in _SI if size >= f), (1.0, unit))
