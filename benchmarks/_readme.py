"""Replace (or append) one benchmark's section of benchmarks/README.md, leaving the others alone."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).with_name("README.md")


def replace_section(heading: str, body: str, readme: Path = README) -> None:
    """Write ``body`` (which starts with ``heading``) in place of the section under ``heading``."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    start = text.find(heading + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(heading))
        tail = text[end + 1 :] if end != -1 else ""
        text = text[:start] + body + ("\n" + tail if tail else "")
    readme.write_text(text, encoding="utf-8")
