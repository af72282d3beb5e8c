"""ISO 8601 times that round-trip a float of unix seconds exactly.

Every JSON output of MAGRAY writes times as ISO 8601 UTC. Exports must also come back bit
for bit, which a microsecond ISO string does not promise for a float like
``1733326000.1234567``. ``exact_iso`` writes the whole-second part as a date and time and
keeps the fraction's shortest round-tripping digits (those of ``repr``), so ``parse_iso``
rebuilds the very same float: ``2024-12-04T15:26:40.1234567Z`` (times before 1970 round-trip
to the microsecond).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_ISO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def exact_iso(ts: float) -> str:
    """``ts`` (unix seconds) as ISO 8601 UTC with every digit of its fraction."""
    whole = math.floor(ts)
    text = repr(float(ts))
    fraction = ""
    if whole >= 0 and "e" not in text and "." in text:
        fraction = "." + text.split(".", 1)[1].rstrip("0") if ts != whole else ""
    elif whole >= 0 and ts != whole:  # a tiny fraction: its exact decimal expansion
        from decimal import Decimal

        fraction = "." + format(Decimal(ts) - whole, "f").split(".", 1)[1].rstrip("0")
    elif ts != whole:  # before 1970 (or exponent notation): to the microsecond
        micro = round((ts - whole) * 1_000_000)
        if micro >= 1_000_000:
            whole, micro = whole + 1, 0
        fraction = f".{micro:06d}".rstrip("0").rstrip(".")
    stamp = datetime.fromtimestamp(whole, UTC).replace(tzinfo=None).isoformat()
    return f"{stamp}{fraction}Z"


def parse_iso(text: str) -> float:
    """Unix seconds of an ISO 8601 time (UTC unless it names an offset); ValueError if not."""
    match = _ISO.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    base, fraction, zone = match.groups()
    offset = "+00:00" if zone in (None, "Z") else zone
    whole = int(datetime.fromisoformat(base + offset).timestamp())
    if not fraction:
        return float(whole)
    if whole < 0:  # before 1970: whole seconds plus the fraction (exact to the microsecond)
        return whole + float("0." + fraction)
    return float(f"{whole}.{fraction}")


def iso(ts: float | None) -> str | None:
    """Unix seconds as ``2026-01-31T14:00:00Z``; None when absent or not a representable date.

    The seconds-precision form every ``--json`` output and server response uses.
    """
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None
