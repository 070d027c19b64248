"""Human-readable numbers with units, for the edges (CLI tables, pages, reports). Values stay raw inside."""

from __future__ import annotations

import math

_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def si(value: float | None, unit: str, digits: int = 3) -> str:
    """1.2345e10, "FLOPs" -> "12.3 GFLOPs"; small values keep their plain form."""
    if _missing(value):
        return "n/a"
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g} {prefix}{unit}"
    return f"{value:.{digits}g} {unit}".rstrip()


def params(value: float | None) -> str:
    return (
        si(value, "params")
        .replace(" kparams", " k params")
        .replace("Mparams", "M params")
        .replace("Gparams", "B params")
        .replace("Tparams", "T params")
    )


def flops(value: float | None) -> str:
    return si(value, "FLOPs")


def flops_per_s(value: float | None) -> str:
    return si(value, "FLOP/s")


def nbytes(value: float | None) -> str:
    """Binary units for memory sizes (1 GiB = 2^30 bytes), as allocators and OS tools report."""
    if _missing(value):
        return "n/a"
    for scale, name in _BINARY:
        if abs(value) >= scale:
            return f"{value / scale:.3g} {name}"
    return f"{value:.0f} B"


def ms(value: float | None) -> str:
    if _missing(value):
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.3g} s"
    return f"{value:.3g} ms"


def rate(value: float | None, unit: str) -> str:
    return si(value, unit)


def percent(value: float | None) -> str:
    return "n/a" if _missing(value) else f"{value:+.1%}"
