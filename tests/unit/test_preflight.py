"""`make preflight`'s arithmetic: what each ceiling serves, what binds first, what to raise."""

from __future__ import annotations

from dataclasses import replace

from tools.preflight import (
    EXECUTION_SECONDS,
    Readings,
    binding,
    buckets_for,
    plan,
    report,
)

# A stack deployed as shipped on a new account: the template's throttle, a Lambda quota of 10.
NEW_ACCOUNT = Readings(
    api_rate_limit=100,
    api_burst_limit=200,
    lambda_concurrency=10,
    account_api_rate=10_000,
    express_start_rate=6_000,
    table_max_write_units=40_000,
    warm_write_units={"LambdaExecutionLog": 4_000, "ShowTickets": 4_000, "TicketSales": 4_000},
    show_buckets={"Rock": 1},
)


def check(readings: Readings, rate: float, setting: str) -> tuple[float | None, float, bool]:
    (found,) = [c for c in plan(readings, rate) if c.setting == setting]
    return found.current, found.needed, found.enough


def test_buckets_for_matches_the_designs_choice_of_n() -> None:
    # docs/design.md, Choosing N: 44 at 800 a second, 54 at 1,000; one item below 19 a second
    assert buckets_for(800) == 44
    assert buckets_for(1000) == 54
    assert buckets_for(18) == 1


def test_plan_on_a_new_account_lambda_concurrency_binds_first() -> None:
    checks = plan(NEW_ACCOUNT, 800)
    first = binding(checks)
    assert first is not None
    assert first.setting == "Lambda concurrent executions"
    # 10 instances held 0.5 s each serve 20 buyers a second; 800 need 400
    assert first.serves == 10 / EXECUTION_SECONDS
    assert first.needed == 400


def test_plan_on_a_new_account_the_one_item_show_binds_next() -> None:
    # 55 sales a second on one item: below the throttle's 100, above the quota's 20
    raised = replace(NEW_ACCOUNT, lambda_concurrency=1000)
    first = binding(plan(raised, 800))
    assert first is not None and first.setting == "buckets of 'Rock'"
    assert round(first.serves or 0) == 56


def test_plan_on_raised_concurrency_and_buckets_the_stage_throttle_binds_first() -> None:
    raised = replace(NEW_ACCOUNT, lambda_concurrency=1000, show_buckets={"Rock": 44})
    first = binding(plan(raised, 800))
    assert first is not None and first.setting == "stage throttle ApiRateLimit"
    assert first.serves == 100


def test_plan_names_what_is_short_and_what_already_suffices() -> None:
    assert check(NEW_ACCOUNT, 800, "stage throttle ApiBurstLimit") == (200, 800, False)
    assert check(NEW_ACCOUNT, 800, "buckets of 'Rock'") == (1, 44, False)
    # 800 sales a second write 3 units each on the claims table: 2,400 of 4,000 warm
    assert check(NEW_ACCOUNT, 800, "DynamoDB warm writes of LambdaExecutionLog") == (
        4000,
        2400,
        True,
    )
    assert check(NEW_ACCOUNT, 800, "Step Functions Express start rate") == (6000, 800, True)
    # Beyond 3,000 buyers a second one show's item cannot be read by all of them
    assert check(NEW_ACCOUNT, 3001, "reads of one show's item") == (3000, 3001, False)


def test_plan_with_everything_raised_binds_nothing() -> None:
    raised = replace(
        NEW_ACCOUNT,
        api_rate_limit=1000,
        api_burst_limit=1000,
        lambda_concurrency=1000,
        show_buckets={"Rock": 54},
    )
    assert binding(plan(raised, 1000)) is None
    assert all(c.enough for c in plan(raised, 1000))


def test_report_prints_what_binds_what_to_raise_and_what_was_not_read() -> None:
    unread = Readings(
        api_rate_limit=100,
        api_burst_limit=200,
        table_max_write_units=10_000,
        show_buckets={"Rock": 8},
        unread={"Lambda GetAccountSettings": "not answered here (404: Not yet implemented)"},
    )
    text = report(unread, 800)
    assert "binds first: stage throttle ApiRateLimit = 100" in text
    assert "stage throttle ApiRateLimit: 100 -> 800: sam deploy --parameter-overrides" in text
    assert "buckets of 'Rock': 8 -> 44: make show NAME='Rock' BUCKETS=44" in text
    assert "DynamoDB write units per table: 10,000 (needs 2,400)" in text
    assert "Lambda concurrent executions: needs 400;" in text
    assert "Lambda GetAccountSettings: not answered here (404: Not yet implemented)" in text
    assert "Traceback" not in text
