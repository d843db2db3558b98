"""Figures the reliability tests gather, written to RELIABILITY.md by `make reliability`.

Tests call `add` or `record` only after their assertions passed, so a figure in the report is
one that the run proved. Without RELIABILITY_REPORT set (as in `make test`), nothing is written.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

FIGURES: Counter[str] = Counter()
FACTS: dict[str, Any] = {}

# (figure, what it means), in the order of the report.
ROWS = [
    ("buyers", "concurrent buyers through HTTP, handler, state machine and DynamoDB"),
    ("tickets", "tickets on sale for them"),
    ("sold", "tickets sold, counted from the tables"),
    ("oversold", "tickets sold beyond the stock"),
    ("server_errors", "500 answers during the concurrent runs"),
    ("naive_stock", "stock offered to the naive read-then-write control"),
    (
        "naive_sold",
        "tickets the naive control sold on the same engine (oversell proves the oracle)",
    ),
    ("same_user_requests", "concurrent requests of one user for one show"),
    ("same_user_overlapping_sales", "sales of that user that overlapped in time"),
    ("idempotent_repeats", "concurrent repeats of one Idempotency-Key"),
    ("idempotent_sales", "sales those repeats made"),
    ("faults_survived", "faults injected in the workflow with every sale rule holding afterwards"),
    ("fuzz_cases", "hostile requests tried against POST /purchases"),
    ("fuzz_server_errors", "of those, answered 500 or with a stack trace"),
    (
        "pan_scanned_bytes",
        "bytes of logs, executions, tables and catalog scanned for card numbers"
        " (13-19 digits passing Luhn): one found fails the run",
    ),
]


def add(name: str, amount: int = 1) -> None:
    FIGURES[name] += amount


def record(name: str, value: int) -> None:
    FIGURES[name] = value


def write_report(path: Path, passed: bool) -> None:
    lines = [
        "# Reliability",
        "",
        f"Figures from the last `make reliability` run, {datetime.date.today().isoformat()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores. "
        + ("Every test of the run passed." if passed else "SOME TESTS OF THE RUN FAILED."),
        "A figure appears only once the test that produced it has passed.",
        "",
        "| figure | value | meaning |",
        "|---|---|---|",
    ]
    lines += [
        f"| {name} | {FIGURES[name]} | {meaning} |" for name, meaning in ROWS if name in FIGURES
    ]
    lines += [
        "",
        "Reproduce with `make reliability` (it runs the tests below and rewrites this file):",
        "`tests/integration/test_reliability.py` (concurrency on the local stack, the naive",
        "control, the card number scan), `tests/integration/test_purchase_faults.py` (faults at",
        "every step) and `tests/integration/test_purchase_fuzz.py` (hostile input).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
