"""ISO 8601 times that round-trip unix-second floats exactly (exports use them)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magray.timefmt import exact_iso, parse_iso


@given(st.floats(min_value=0, max_value=253402300799.0, allow_nan=False))
def test_exact_round_trip_from_1970(ts: float) -> None:
    assert parse_iso(exact_iso(ts)) == ts


@given(st.floats(min_value=-62135596800.0, max_value=0, allow_nan=False))
def test_round_trip_to_the_microsecond_before_1970(ts: float) -> None:
    assert abs(parse_iso(exact_iso(ts)) - ts) <= 1e-6 + abs(ts) * 1e-15


def test_shapes_and_offsets() -> None:
    assert exact_iso(1733326000.1234567) == "2024-12-04T15:26:40.1234567Z"
    assert exact_iso(0.0) == "1970-01-01T00:00:00Z"
    assert parse_iso("2024-12-04T16:26:40.5+01:00") == 1733326000.5
    with pytest.raises(ValueError):
        parse_iso("yesterday")
