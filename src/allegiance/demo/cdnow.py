"""Find and read the CDNOW master file shipped inside the ``lifetimes`` package.

The data is not copied into this repository: the package is installed (without its
dependencies) and the file read from its installed location.
"""

from __future__ import annotations

import csv
import importlib.metadata
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "lifetimes"
VERSION = "0.11.3"
MASTER = "CDNOW_master.txt"
# the 1/10th sample the BG/NBD paper fits (2,357 customers): master id, sample id, date, CDs,
# dollars; no header
SAMPLE = "CDNOW_sample.txt"


def locate(install: bool = True, name: str = MASTER) -> Path:
    """Path of ``CDNOW_master.txt`` (or another file of the package, e.g. ``SAMPLE``);
    installs ``lifetimes`` with --no-deps when missing."""
    path = _find(name)
    if path is None and install:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                f"{PACKAGE}=={VERSION}",
            ],
            check=True,
        )
        importlib.invalidate_caches()
        path = _find(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} not found; install it with: pip install --no-deps {PACKAGE}=={VERSION}"
        )
    return path


def _find(name: str) -> Path | None:
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == name:
            located = Path(str(file.locate()))
            if located.exists():
                return located
    return None


def rows(path: Path) -> Iterator[tuple[str, str, int, str]]:
    """(customer id, ISO date, number of CDs, dollars as text) per purchase, in file order."""
    with path.open("r", encoding="utf-8", newline="") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) != 4 or not parts[1].isdigit():
                continue  # header
            customer, day, cds, dollars = parts
            yield customer, f"{day[0:4]}-{day[4:6]}-{day[6:8]}", int(cds), dollars


def sample_rows(path: Path) -> Iterator[tuple[str, str, int, str]]:
    """(sample customer id, ISO date, number of CDs, dollars as text) per purchase of
    ``CDNOW_sample.txt``."""
    with path.open("r", encoding="utf-8", newline="") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) != 5 or not parts[2].isdigit():
                continue
            _, customer, day, cds, dollars = parts
            yield customer, f"{day[0:4]}-{day[4:6]}-{day[6:8]}", int(cds), dollars


def write_orders_csv(source: Path, target: Path) -> int:
    """Convert CDNOW purchases into an order CSV for ``allegiance import orders``."""
    count = 0
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id",
                "member_id",
                "placed_at",
                "currency",
                "total",
                "sku",
                "name",
                "category",
                "quantity",
                "amount",
            ]
        )
        for index, (customer, iso, cds, dollars) in enumerate(rows(source)):
            amount = f"{float(dollars):.2f}"
            writer.writerow(
                [
                    f"cdnow-{customer}-{index}",
                    customer,
                    f"{iso}T12:00:00Z",
                    "USD",
                    amount,
                    "cd",
                    "Compact discs",
                    "music",
                    cds,
                    amount,
                ]
            )
            count += 1
    return count
