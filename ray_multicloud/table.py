"""Plain-text tables for the CLI: pure string building, no printing.

``format_table`` aligns columns; numbers (and cells the caller marks by passing ``align``) are
right-aligned so prices line up on the decimal point when they share a format.
"""

from __future__ import annotations

from collections.abc import Sequence

Cell = str | int | float | None


def _text(cell: Cell) -> str:
    if cell is None:
        return "-"
    if isinstance(cell, float):
        return f"{cell:g}"
    return str(cell)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], align: str | None = None) -> str:
    """Render ``rows`` under ``headers``; ``align`` is one 'l' or 'r' per column (default: numbers right).

    Every row must have as many cells as there are headers. Returns the table without a trailing
    newline; an empty ``rows`` gives the header and the rule only.
    """
    width = len(headers)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"row {i} has {len(row)} cells, expected {width}")
    if align is None:
        align = "".join(
            "r" if rows and all(isinstance(r[c], (int, float)) or r[c] is None for r in rows) else "l"
            for c in range(width)
        )
    if len(align) != width or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {width} characters of 'l'/'r', got {align!r}")
    texts = [[_text(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(t[c]) for t in texts]) for c, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [cell.rjust(w) if a == "r" else cell.ljust(w)
                 for cell, w, a in zip(cells, widths, align, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(t) for t in texts)
    return "\n".join(out)
