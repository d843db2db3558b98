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

FIGURES: Counter[tuple[str, str]] = Counter()
# `make reliability` is writing the report: runs may take their full size.
REPORTING = bool(os.environ.get("RELIABILITY_REPORT"))

# (figure, what it means), in the order of the report.
ROWS = [
    ("buyers", "concurrent buyers through HTTP, handler, state machine and DynamoDB"),
    ("tickets", "tickets on sale for them"),
    ("sold", "tickets sold, counted from the tables"),
    ("oversold", "tickets sold beyond the stock"),
    ("server_errors", "500 answers during the concurrent runs"),
    ("busy_answers", "503 answers (show too contended right now), each retried as a client would"),
    ("commit_conflicts", "commits the engine cancelled for a transaction conflict meanwhile"),
    ("naive_stock", "stock offered to the naive read-then-write control"),
    (
        "naive_sold",
        "tickets the naive control sold on the same engine (oversell proves the oracle)",
    ),
    ("same_user_requests", "concurrent requests of one user for one show"),
    ("same_user_overlapping_sales", "sales of that user that overlapped in time"),
    ("idempotent_repeats", "concurrent repeats of one Idempotency-Key"),
    ("idempotent_sales", "sales those repeats made"),
    ("dropped_repeats", "concurrent repeats of one Idempotency-Key, each connection dropped"),
    ("dropped_sales", "sales those repeats made"),
    (
        "one_buyer_requests",
        "concurrent requests of one buyer over 5 Idempotency-Keys, capped shows",
    ),
    ("one_buyer_cap", "the per-buyer cap of those shows (one in one item, one in 4 buckets)"),
    ("one_buyer_most_bought", "most tickets that buyer holds of either show"),
    ("confirmations_checked", "200 answers matched against the sale records"),
    ("confirmations_without_sale", "of those, 200s whose buyer, show and quantity no sale holds"),
    ("faults_survived", "faults injected in the workflow with every sale rule holding afterwards"),
    (
        "refused_token_requests",
        "purchases sent with no token, or an expired, forged or wrong-audience one",
    ),
    ("refused_token_sales", "of those, sales made (counted from the tables)"),
    ("refused_token_writes", "of those, items written to any table"),
    ("fuzz_cases", "hostile requests tried against POST /purchases"),
    ("fuzz_server_errors", "of those, answered 500 or with a stack trace"),
    (
        "pan_scanned_bytes",
        "bytes of logs, executions, tables and catalog scanned for card numbers"
        " (13-19 digits passing Luhn): one found fails the run",
    ),
]


def add(name: str, amount: int = 1, column: str = "") -> None:
    FIGURES[name, column] += amount


def record(name: str, value: int, column: str = "") -> None:
    """A figure, for one column of the report (a transaction hold window, say) or for all."""
    FIGURES[name, column] = value


def write_report(path: Path, passed: bool) -> None:
    columns = sorted({column for _, column in FIGURES}, key=_column_order)
    lines = [
        "# Reliability",
        "",
        f"Figures from the last `make reliability` run, {datetime.date.today().isoformat()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores. "
        + ("Every test of the run passed." if passed else "SOME TESTS OF THE RUN FAILED."),
        "A figure appears only once the test that produced it has passed. The concurrency runs",
        "use the offline DynamoDB engine's transaction hold window named at the head of each",
        "column; a figure that does not depend on it stands in the first column.",
        "",
        "| figure | " + " | ".join(column or "value" for column in columns) + " | meaning |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    for name, meaning in ROWS:
        cells = [str(FIGURES[name, c]) if (name, c) in FIGURES else "" for c in columns]
        if any(cells):
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {meaning} |")
    lines += [
        "",
        "Reproduce with `make reliability` (it runs the tests below and rewrites this file):",
        "`tests/integration/test_reliability.py` (concurrency on the local stack at two hold",
        "windows, the naive control, the card number scan),",
        "`tests/integration/test_purchase_faults.py` (faults at every step),",
        "`tests/integration/test_purchase_fuzz.py` (hostile input) and",
        "`tests/integration/test_buyer_auth.py` (requests without a valid token).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _column_order(column: str) -> tuple[int, float]:
    # "" (figures of no window) first, then windows by length: "18 ms" before "180 ms".
    return (0, 0.0) if not column else (1, float(column.split()[0]))
