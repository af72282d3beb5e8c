"""`make dist` builds a wheel a user can `pipx install`: entry point and package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_has_the_entry_point_and_package_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("magray-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "magray = magray.cli.main:main" in text
    assert "magray/py.typed" in names
    assert "magray/cli/main.py" in names
    # The dashboard's templates and static files (htmx and its licence) ship in the wheel.
    for asset in ("templates/base.html", "static/htmx.min.js", "static/htmx.LICENSE"):
        assert f"magray/server/ui/{asset}" in names, asset
    assert not any(n.startswith("tests/") for n in names)
