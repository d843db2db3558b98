"""The card number scanner: finds PANs however they are typed, and not ids, times or floats."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from card_numbers import find_card_numbers
from card_validation import luhn_valid


def with_check_digit(partial: str) -> str:
    """`partial` plus the one digit that makes it pass Luhn."""
    (number,) = [partial + digit for digit in "0123456789" if luhn_valid(partial + digit)]
    return number


def luhn_valid_near(start: int) -> str:
    """The first number from `start` up that passes Luhn."""
    return next(str(n) for n in range(start, start + 10) if luhn_valid(str(n)))


VISA = "4111111111111111"
MASTERCARD = "5555555555554444"
# 13, 15 and 19 digits, and prefixes other than Visa's and Mastercard's.
VISA_13 = "4222222222222"
VISA_13_LOW = "4007000000027"
AMEX = "378282246310005"
VISA_19 = with_check_digit("411111111111111111")
MASTERCARD_2_SERIES = "2223000048400011"
DINERS_14 = "36259600000004"


def test_luhn_valid_known_numbers() -> None:
    for number in [VISA, MASTERCARD, VISA_13, VISA_13_LOW, AMEX, MASTERCARD_2_SERIES, DINERS_14]:
        assert luhn_valid(number), number
    assert not luhn_valid("4111111111111112")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VISA, [VISA]),
        (f'{{"cardNumber": "{VISA}"}}', [VISA]),
        ("4111 1111 1111 1111", [VISA]),
        ("5555-5555-5555-4444", [MASTERCARD]),
        ("card 4111 1111 1111 1111 exp 12/29", [VISA]),
        (f"my card is {VISA}.", [VISA]),
        (f"pan:{VISA}, card={MASTERCARD}", [VISA, MASTERCARD]),
        (VISA_13, [VISA_13]),
        (VISA_13_LOW, [VISA_13_LOW]),
        (AMEX, [AMEX]),
        ("3782 822463 10005", [AMEX]),
        (VISA_19, [VISA_19]),
        (MASTERCARD_2_SERIES, [MASTERCARD_2_SERIES]),
        (DINERS_14, [DINERS_14]),
        # A grouped run whose whole is no card: its groups are tried.
        ("qty 2 4111 1111 1111 1111", [VISA]),
        ("4111 1111 1111 1111 2026", [VISA]),
        # JSON-escaped inside a log line, or after a newline.
        (f'"message": "got \\"{VISA}\\""', [VISA]),
        (f"line one\n{VISA}\n", [VISA]),
    ],
)
def test_find_card_numbers_finds_typed_card_numbers(text: str, expected: list[str]) -> None:
    assert find_card_numbers(text) == expected


def test_find_card_numbers_luhn_invalid_or_wrong_length_is_not_a_card() -> None:
    assert find_card_numbers("4111111111111112") == []
    assert find_card_numbers("411111111111") == []  # 12 digits
    assert find_card_numbers("4111 1111 1111 111") == []  # 15 digits, not Luhn-valid


def test_find_card_numbers_longer_plain_runs_are_not_windowed() -> None:
    # GIVEN 20- and 32-digit runs that hold a Luhn-valid 16-digit window
    twenty = VISA + "0000"
    thirty_two = "0" * 16 + VISA
    # THEN neither is a card number: only a whole run of 13-19 digits is
    assert find_card_numbers(twenty) == []
    assert find_card_numbers(thirty_two) == []
    assert find_card_numbers(f"id {twenty} and {thirty_two}") == []


# Ids and times the system writes everywhere; each one holds a long digit run.
HEX_WITH_DIGIT_RUN = "abcdef" + VISA + "0123abcdef"  # a 32-hex attempt id
UUID_WITH_DIGIT_RUN = "abcdefab-abcd-4bcd-" + with_check_digit("8234" + "12345678901")
EPOCH_MS = luhn_valid_near(1_795_892_400_000)
EPOCH_US = luhn_valid_near(1_795_892_400_000_000)
EPOCH_NS = luhn_valid_near(1_795_892_400_000_000_000)
COMPACT_TIME = with_check_digit("2026112919000")  # yyyymmddHHMMSS
COMPACT_TIME_MS = with_check_digit("2026112919000012")  # yyyymmddHHMMSSfff


@pytest.mark.parametrize(
    "text",
    [
        HEX_WITH_DIGIT_RUN,
        UUID_WITH_DIGIT_RUN,
        "0123456789abcdef0123456789abcdef",
        f"arn:aws:states:us-east-1:123456789012:express:PurchaseStateMachine:{HEX_WITH_DIGIT_RUN}"
        f":{UUID_WITH_DIGIT_RUN}",
        f"arn:aws:states:us-east-1:123456789012:execution:PurchaseStateMachine:{HEX_WITH_DIGIT_RUN}",
        "5b7e9a3c-0000-4000-8000-000000000001",  # Lambda request id
        "Xq1a2b3cIAMEbQw=",  # API Gateway request id
        "Root=1-6763a0f1-012345678901234567890123",  # X-Ray trace id, all-digit tail
        f"1-6763a0f1-{VISA}abcd",
        EPOCH_MS,
        EPOCH_US,
        EPOCH_NS,
        f'{{"timeEpoch": {EPOCH_MS}, "now": 1795892400}}',
        "2026-11-29T19:00:00.000Z",
        "2026-11-29T19:00:00.123456+00:00",
        "2026-11-29 19:00:00",
        "29/Nov/2026:19:00:00 +0000",
        "20261129T190000Z",
        COMPACT_TIME,
        COMPACT_TIME_MS,
        f"elapsed 0.{VISA} s",
        f"{VISA}.5",
        f"1.{VISA}e-05",
        "\uff14\uff11\uff11\uff11" * 4,  # full-width digits: not what a card number is
    ],
)
def test_find_card_numbers_ids_times_and_floats_are_not_cards(text: str) -> None:
    # The test values really do hold Luhn-valid runs: otherwise this test could not fail.
    assert any(luhn_valid(run) for run in [VISA, EPOCH_MS, EPOCH_US, EPOCH_NS, COMPACT_TIME])
    assert find_card_numbers(text) == []


def test_find_card_numbers_time_look_alikes_with_card_prefixes_are_still_cards() -> None:
    # 13-, 16- and 19-digit runs outside the epoch window (Visa starts with 4) are not times.
    for number in [VISA_13_LOW, VISA, VISA_19, MASTERCARD_2_SERIES]:
        assert find_card_numbers(number) == [number]


CARD_PREFIXES = st.sampled_from(["4", "51", "55", "2221", "2720", "34", "37", "6011", "35", "30"])


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    prefix = draw(CARD_PREFIXES)
    length = draw(st.integers(min_value=13, max_value=19))
    body = draw(st.text(alphabet="0123456789", min_size=length - 1 - len(prefix)))
    return with_check_digit(prefix + body[: length - 1 - len(prefix)])


@given(
    number=card_numbers(),
    separator=st.sampled_from(["", " ", "-"]),
    before=st.sampled_from(["", " ", '"', "card: ", "=", "\n", "(", "number "]),
    after=st.sampled_from(["", " ", '"', ".", ",", ")", "\n", " exp"]),
)
def test_find_card_numbers_finds_any_luhn_valid_card_however_grouped(
    number: str, separator: str, before: str, after: str
) -> None:
    grouped = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
    assert find_card_numbers(f"{before}{grouped}{after}") == [number]


@given(value=st.uuids())
def test_find_card_numbers_uuids_are_never_cards(value: uuid.UUID) -> None:
    assert find_card_numbers(str(value)) == []
    assert find_card_numbers(value.hex) == []
    assert find_card_numbers(f"arn:aws:states:us-east-1:123456789012:express:sm:{value.hex}") == []


@given(number=card_numbers(), left=st.text("abcdef", min_size=1), right=st.text("abcdef"))
def test_find_card_numbers_digit_runs_inside_hex_ids_are_never_cards(
    number: str, left: str, right: str
) -> None:
    assert find_card_numbers(f"{left}{number}{right}") == []
    assert find_card_numbers(f"{left}-{number}-{right or 'a'}") == []
