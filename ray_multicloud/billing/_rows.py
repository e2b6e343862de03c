"""Reading a billing export's rows: CSV (plain or gzip), newline-delimited JSON, or Parquet; and
the number and time parsing every reader shares. Errors are ``BillError`` naming the file and row."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ray_multicloud.billing import BillError


def read_rows(path: str | Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(row number, row)`` for every row of ``path``: ``.parquet`` through pyarrow, ``.json`` /
    ``.jsonl`` as one JSON object per line, anything else as CSV with a header (``.gz`` unzipped)."""
    p = Path(path)
    name = p.name.lower()
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            for i, row in enumerate(pq.read_table(p).to_pylist(), start=2):
                yield i, row
            return
        raw = p.read_bytes()
        if name.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise BillError(f"{p}: cannot read the billing export ({exc})") from exc
    if name.removesuffix(".gz").endswith((".json", ".jsonl", ".ndjson")):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BillError(f"{p}: line {i} is not a JSON object ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise BillError(f"{p}: line {i} is not a JSON object")
            yield i, row
        return
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise BillError(f"{p}: empty file; expected a CSV header")
    for i, row in enumerate(reader, start=2):
        if None in row:  # csv's restkey: more cells than the header has columns
            raise BillError(f"{p}: row {i} has more cells than the header's {len(reader.fieldnames)} columns")
        yield i, row


def number(path: str | Path, row: int, column: str, value: Any) -> float:
    """A finite amount; an empty cell is 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0.0
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise BillError(f"{path}: row {row}: {column} {value!r} is not a number") from exc
    if not math.isfinite(out):
        raise BillError(f"{path}: row {row}: {column} {value!r} is not a finite number")
    return out


def day_of(path: str | Path, row: int, column: str, value: Any) -> date:
    """The UTC day of an ISO-8601 time or date (``2026-11-01T00:00:00Z``, ``2026-11-01 00:00:00 UTC``,
    ``2026-11-01``), or of a US ``MM/DD/YYYY`` date (Azure's older exports)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    if not text:
        raise BillError(f"{path}: row {row}: {column} is empty; every line needs its usage time")
    if len(text) == 10 and text[2] == "/" and text[5] == "/":
        try:
            return datetime.strptime(text, "%m/%d/%Y").date()
        except ValueError as exc:
            raise BillError(f"{path}: row {row}: {column} {text!r} is not a date") from exc
    cleaned = text.replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise BillError(f"{path}: row {row}: {column} {text!r} is not an ISO-8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def require_usd(path: str | Path, row: int, value: Any) -> None:
    """``BillError`` naming the row unless its currency is USD (an empty cell counts as USD)."""
    currency = str(value or "USD")
    if currency != "USD":
        raise BillError(f"{path}: row {row}: currency {currency!r}; only USD bills are reconciled")


def require(path: str | Path, have: list[str], needed: tuple[str, ...], fmt: str, spec: str) -> None:
    """``BillError`` naming the missing columns, when ``have`` lacks any of ``needed``."""
    missing = [c for c in needed if c not in have]
    if missing:
        raise BillError(
            f"{path}: not a {fmt} export: missing column(s) {missing} (columns found: {have[:8]}"
            f"{', ...' if len(have) > 8 else ''}); the format is {spec}"
        )
