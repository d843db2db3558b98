"""One show under a rush of buyers: sales per second and error share against offered buyers per
second, on the offline DynamoDB engine's contention model, next to the single-item ceiling.

Buyers arrive open-loop at a fixed rate, each a new user buying one ticket of one show whose
stock cannot run out during the run, through the real purchase function's workflow call and the
real ASL. Every sale is a transaction on the show's one ShowTickets item, which one transaction
at a time may hold: the item sells at most 1 / (hold window) transactions a second.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.measurement import BenchContext, Headline, Section, table

SHOW = "Rush"
STOCK = 1_000_000
DURATION_SECONDS = 8.0
# (hold window in ms, offered buyers per second): the engine's default window, as high as this
# machine can offer, and ten times it, whose ceiling the machine can offer well beyond.
SWEEPS = {18.0: (5.0, 10.0, 20.0, 30.0), 180.0: (2.0, 4.0, 6.0, 10.0, 16.0)}
PICTURE = Path("docs") / "contention-curve.svg"


@dataclass(frozen=True)
class Point:
    window_ms: float
    offered_per_s: float
    buyers: int
    sold: int
    busy: int  # 503: tickets remained, but every commit lost its race within the bound
    errors: int  # anything else that was not a sale
    elapsed_s: float
    conflicts: int  # commits the engine cancelled for a conflict

    @property
    def ceiling_per_s(self) -> float:
        return 1000 / self.window_ms

    @property
    def sold_per_s(self) -> float:
        return self.sold / self.elapsed_s

    @property
    def error_share(self) -> float:
        return (self.busy + self.errors) / self.buyers


def run_point(
    window_ms: float, offered_per_s: float, duration_s: float = DURATION_SECONDS
) -> Point:
    """Offer `offered_per_s` buyers a second for `duration_s` to one show, at hold window
    `window_ms`, and count how they ended."""
    from bench.execution_logs import offline_purchase_stack
    from offline import cfn_template

    os.environ["LOCAL_DYNAMODB_TRANSACTION_MS"] = f"{window_ms:g}"
    with offline_purchase_stack(cfn_template.load_template()) as (dynamodb, _, _):
        import purchase_workflow
        from card_validation import Card
        from offline.dynamodb_engine import ENGINE
        from purchase_outcomes import SHOW_BUSY, SOLD

        dynamodb.put_item(
            TableName="ShowTickets",
            Item={"showId": {"S": SHOW}, "ticketsAvailable": {"N": str(STOCK)}},
        )
        outcomes: list[str] = []
        lock = threading.Lock()

        def buy(number: int) -> None:
            sale = purchase_workflow.Sale(f"fan{number}", SHOW, 1, Card("visa", "1111"))
            try:
                result = purchase_workflow.run_purchase(sale, purchase_workflow.attempt_id(None))
                outcome = result.outcome_metric
            except purchase_workflow.RetryableError as retryable:
                outcome = retryable.outcome.metric
            except Exception:
                outcome = "error"
            with lock:
                outcomes.append(outcome)

        buyers = int(offered_per_s * duration_s)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=256) as pool:
            for number in range(buyers):
                # Open loop: each buyer arrives on schedule, whatever the others are doing.
                time.sleep(max(0.0, started + number / offered_per_s - time.monotonic()))
                pool.submit(buy, number)
        elapsed = time.monotonic() - started
        sold = outcomes.count(SOLD.metric)
        busy = outcomes.count(SHOW_BUSY.metric)
        return Point(
            window_ms,
            offered_per_s,
            buyers,
            sold,
            busy,
            len(outcomes) - sold - busy,
            elapsed,
            ENGINE.counts["transaction_conflicts"],
        )


def measure(context: BenchContext) -> Section:
    points = [run_point(window, rate) for window, rates in SWEEPS.items() for rate in rates]
    (context.root / PICTURE).parent.mkdir(exist_ok=True)
    (context.root / PICTURE).write_text(svg(points), encoding="utf-8")
    rows = [
        [
            f"{p.window_ms:g} ms",
            f"{p.ceiling_per_s:.1f}",
            f"{p.offered_per_s:g}",
            p.buyers,
            p.sold,
            f"{p.sold_per_s:.1f}",
            f"{p.sold_per_s / p.ceiling_per_s:.0%}",
            p.busy,
            p.errors,
            f"{p.error_share:.1%}",
            p.conflicts,
        ]
        for p in points
    ]
    worst = max(points, key=lambda p: p.offered_per_s / p.ceiling_per_s)
    body = "\n".join(
        [
            "Buyers arrive open-loop at a fixed rate, each a new user buying one ticket of a "
            "show whose stock cannot run out during the run, through the real purchase "
            "function's workflow call and the real ASL on the offline DynamoDB engine. Every "
            "sale is a transaction on the show's one ShowTickets item, which one transaction at "
            "a time may hold: the item sells at most 1 / (hold window) transactions a second, "
            "the ceiling below.",
            "",
            f"![sales/s and error share against offered buyers/s]({PICTURE.as_posix()})",
            "",
            table(
                [
                    "hold window",
                    "ceiling/s",
                    "offered/s",
                    "buyers",
                    "sold",
                    "sold/s",
                    "of ceiling",
                    "503",
                    "other errors",
                    "error share",
                    "conflicts",
                ],
                rows,
            ),
            "",
            "Each row is one run of "
            f"{DURATION_SECONDS:g} s of arrivals (the last buyers' answers come after). At the "
            "default window this machine cannot offer enough buyers to reach the ceiling: each "
            "execution costs the offline interpreter tens of milliseconds of CPU, and once the "
            "machine is saturated (sold/s below offered/s) every step, the hold included, "
            "stretches. At ten times the window it can, and sold/s flattens below the ceiling "
            "while the share of 503s grows with the offered rate. 503 is the retryable answer "
            "(`Retry-After: 1`, nothing sold); 'other errors' counts every answer that is neither "
            "a sale nor a 503 (the stock cannot run out here, so none is sold out).",
        ]
    )
    headline = Headline(
        "one show at the ceiling (contention model)",
        f"{worst.sold_per_s:.1f} sold/s of {worst.ceiling_per_s:.1f} ceiling at "
        f"{worst.offered_per_s:g} offered/s, {worst.error_share:.0%} retryable, "
        f"{worst.errors} errors",
    )
    return Section("One show under contention", body, (headline,))


def svg(points: list[Point]) -> str:
    """Sold/s (solid) and error share (dashed) against offered/s, in multiples of each window's
    single-item ceiling, so both windows share the axes."""
    width, height, pad = 640, 360, 50
    x_max = max(p.offered_per_s / p.ceiling_per_s for p in points) * 1.1
    y_max = max(1.2, max(p.sold_per_s / p.ceiling_per_s for p in points) * 1.1)

    def xy(x: float, y: float) -> str:
        left = pad + x / x_max * (width - 2 * pad)
        return f"{left:.1f},{height - pad - y / y_max * (height - 2 * pad):.1f}"

    colours = {18.0: "#1f77b4", 180.0: "#d62728"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<polyline points="{xy(0, 0)} {xy(x_max, 0)}" stroke="black" fill="none"/>',
        f'<polyline points="{xy(0, 0)} {xy(0, y_max)}" stroke="black" fill="none"/>',
        f'<polyline points="{xy(0, 1)} {xy(x_max, 1)}" stroke="grey" stroke-dasharray="2,4" '
        'fill="none"/>',
        f'<text x="{width - pad}" y="{xy(0, 1).split(",")[1]}" text-anchor="end" dy="-4">'
        "single-item ceiling</text>",
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">offered buyers/s, in '
        "multiples of the ceiling</text>",
        f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
        'text-anchor="middle">sold/s of the ceiling (solid), error share (dashed)</text>',
    ]
    for window, colour in colours.items():
        series = sorted((p for p in points if p.window_ms == window), key=lambda p: p.offered_per_s)
        if not series:
            continue
        sold = " ".join(
            xy(p.offered_per_s / p.ceiling_per_s, p.sold_per_s / p.ceiling_per_s) for p in series
        )
        errors = " ".join(xy(p.offered_per_s / p.ceiling_per_s, p.error_share) for p in series)
        parts += [
            f'<polyline points="{sold}" stroke="{colour}" stroke-width="2" fill="none"/>',
            f'<polyline points="{errors}" stroke="{colour}" stroke-dasharray="6,4" fill="none"/>',
        ]
        last = series[-1]
        parts.append(
            f'<text x="{xy(last.offered_per_s / last.ceiling_per_s, 0).split(",")[0]}" '
            f'y="{xy(0, last.sold_per_s / last.ceiling_per_s).split(",")[1]}" dy="-6" '
            f'text-anchor="end" fill="{colour}">{window:g} ms window</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    """Print one point: python -m bench.contention WINDOW_MS RATE [SECONDS]."""
    import sys

    window, rate, *rest = (float(argument) for argument in sys.argv[1:])
    point = run_point(window, rate, *(rest or [DURATION_SECONDS]))
    print(point, f"sold/s={point.sold_per_s:.1f} error_share={point.error_share:.1%}")


if __name__ == "__main__":
    main()
