"""What every measurement receives and returns, and the Markdown helpers they share."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BenchContext:
    """Shared by every measurement of one run."""

    root: Path
    template: Mapping[str, Any]
    runs: int


@dataclass(frozen=True)
class Headline:
    """One line of the summary table at the top of BENCHMARKS.md."""

    measure: str
    figure: str
    target: str = ""
    verdict: str = ""


@dataclass(frozen=True)
class Section:
    """A measurement's part of BENCHMARKS.md."""

    title: str
    body: str
    headlines: tuple[Headline, ...] = field(default_factory=tuple)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; numbers are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    align = [
        "---:"
        if any(row[index] for row in cells)
        and all(_numeric(row[index]) for row in cells if row[index])
        else "---"
        for index in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _numeric(cell: str) -> bool:
    stripped = cell.strip("$%x*~ ").removesuffix(" MB").removesuffix(" KB")
    stripped = stripped.replace(",", "").replace(".", "", 1).lstrip("+-")
    return stripped.isdigit()


def usd(value: float) -> str:
    return f"${value:,.2f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def machine() -> dict[str, str]:
    """CPU model, cores and Python: what the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "CPU": cpu,
        "Cores": str(os.cpu_count() or "?"),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "OS": f"{platform.system()} ({platform.machine()})",
    }


def scrub(text: str, root: Path) -> str:
    """Keep machine paths out of the report: repository, temporary and home folders."""
    replacements = [(str(root), "."), (tempfile.gettempdir(), "<tmp>"), (str(Path.home()), "~")]
    for old, new in replacements:
        text = text.replace(old, new)
    return text
