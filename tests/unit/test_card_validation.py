"""Unit tests for the card_validation layer: brands, lengths, ranges, Luhn, and no leaks."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from card_validation import Card, InvalidCardError, check_card, luhn_valid

PROPERTY_SETTINGS = settings(max_examples=300)


def _check_digit(body: str) -> str:
    """Luhn check digit for body, computed here independently of the code under test."""
    total = 0
    # Once the check digit is appended, the body's rightmost digit is the first one doubled.
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str(-total % 10)


def _complete(prefix: str, length: int) -> str:
    """A number of the given length: prefix, zero padding, then a correct check digit."""
    body = prefix.ljust(length - 1, "0")
    return body + _check_digit(body)


def _in_digit_block(zero: int, ascii_digits: str) -> str:
    """ascii_digits spelled in another Unicode digit block, given that block's zero."""
    return "".join(chr(zero + int(char)) for char in ascii_digits)


# --- the test helpers themselves, anchored on published numbers --------------------------------


@pytest.mark.parametrize(
    "number", ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117"]
)
def test_complete_published_number_reproduces_its_check_digit(number: str) -> None:
    assert _complete(number[:-1], len(number)) == number


def test_in_digit_block_arabic_indic_spells_unicode_decimal_digits() -> None:
    # GIVEN digits that str.isdecimal() and int() accept, which the layer must still reject
    spelled = _in_digit_block(0x0660, "4111")

    assert spelled == "\u0664\u0661\u0661\u0661"
    assert spelled.isdecimal()
    assert int(spelled) == 4111


# --- luhn_valid ---------------------------------------------------------------------------


@pytest.mark.parametrize("digits", ["4111111111111111", "79927398713", "0", "00"])
def test_luhn_valid_correct_checksum_true(digits: str) -> None:
    assert luhn_valid(digits) is True


@pytest.mark.parametrize(
    "digits", ["4111111111111112", "79927398710", "1", "", "4111 1111 1111 1111", "4111x"]
)
def test_luhn_valid_wrong_checksum_or_not_ascii_digits_false(digits: str) -> None:
    assert luhn_valid(digits) is False


@pytest.mark.parametrize("zero", [0x0660, 0x06F0, 0x0966, 0xFF10, 0x1D7D8])
def test_luhn_valid_valid_number_in_other_digit_block_false(zero: int) -> None:
    # GIVEN a Luhn-valid number spelled in Unicode digits the PAN scanner might meet in free text
    digits = _in_digit_block(zero, "4111111111111111")

    # THEN it is not a card number: only ASCII 0-9 count
    assert luhn_valid(digits) is False


# --- published test numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4111111111111111", "visa"),
        ("4012888888881881", "visa"),
        ("4222222222222", "visa"),  # 13 digits
        ("4111111111111111110", "visa"),  # 19 digits, check digit computed by _complete
        ("5555555555554444", "mastercard"),
        ("5105105105105100", "mastercard"),
        ("2223000048400011", "mastercard"),
        ("2221000000000009", "mastercard"),
    ],
)
def test_check_card_published_number_returns_brand_and_last4(number: str, brand: str) -> None:
    assert luhn_valid(number)  # guards the table itself against a typo
    assert check_card(number) == Card(brand=brand, last4=number[-4:])


def test_check_card_result_keeps_only_brand_and_last4() -> None:
    card = check_card("4111111111111111")

    assert [field.name for field in dataclasses.fields(card)] == ["brand", "last4"]
    assert "4111111111111111" not in repr(card)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.last4 = "0000"  # type: ignore[misc]


# --- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        " 4111 - 1111--1111  1111 ",
        "4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1",
    ],
)
def test_check_card_spaces_and_dashes_dropped(raw: str) -> None:
    assert check_card(raw) == Card(brand="visa", last4="1111")


@pytest.mark.parametrize(
    "raw",
    [
        "4111\t1111\t1111\t1111",  # tab
        "4111\u00a01111\u00a01111\u00a01111",  # no-break space
        "4111\u20131111\u20131111\u20131111",  # en dash
        "4111.1111.1111.1111",
        "4111111111111111\n",
    ],
)
def test_check_card_other_separators_invalid(raw: str) -> None:
    # GIVEN separators other than ASCII space and hyphen-minus
    # WHEN / THEN they are rejected, not silently stripped
    with pytest.raises(InvalidCardError):
        check_card(raw)


# --- range boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [
        ("2220", False),
        ("2221", True),
        ("2720", True),
        ("2721", False),
        ("50", False),
        ("51", True),
        ("55", True),
        ("56", False),
    ],
)
def test_check_card_mastercard_range_boundary(prefix: str, accepted: bool) -> None:
    # GIVEN a 16-digit number with a correct check digit, so only the prefix decides
    number = _complete(prefix, 16)
    assert luhn_valid(number)

    if accepted:
        assert check_card(number) == Card(brand="mastercard", last4=number[-4:])
    else:
        with pytest.raises(InvalidCardError):
            check_card(number)


@pytest.mark.parametrize("length", range(12, 21))
def test_check_card_visa_length_only_13_16_19_valid(length: int) -> None:
    number = _complete("4", length)
    assert luhn_valid(number)

    if length in (13, 16, 19):
        assert check_card(number) == Card(brand="visa", last4=number[-4:])
    else:
        with pytest.raises(InvalidCardError):
            check_card(number)


@pytest.mark.parametrize("prefix", ["51", "55", "2221", "2720"])
@pytest.mark.parametrize("length", [15, 16, 17])
def test_check_card_mastercard_length_only_16_valid(prefix: str, length: int) -> None:
    number = _complete(prefix, length)
    assert luhn_valid(number)

    if length == 16:
        assert check_card(number).brand == "mastercard"
    else:
        with pytest.raises(InvalidCardError):
            check_card(number)


# --- rejected input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "378282246310005",  # Amex
        "371449635398431",  # Amex
        "6011111111111117",  # Discover
        "6500000000000002",  # Discover 65
        "3530111333300000",  # JCB
        _complete("1", 16),
        _complete("0", 16),
        _complete("9", 16),
    ],
)
def test_check_card_other_brand_invalid(raw: str) -> None:
    assert luhn_valid(raw)  # rejected for the brand, not the checksum

    with pytest.raises(InvalidCardError):
        check_card(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " ",
        "-",
        " - -- ",
        "4111a11111111111",
        "abcd efgh ijkl mnop",
        "+4111111111111111",
        _in_digit_block(0x0660, "4111111111111111"),  # Arabic-Indic
        _in_digit_block(0x06F0, "4111111111111111"),  # Extended Arabic-Indic (Persian)
        _in_digit_block(0xFF10, "4111111111111111"),  # full-width
        _in_digit_block(0x0966, "4111111111111111"),  # Devanagari
        _in_digit_block(0x1D7D8, "4111111111111111"),  # mathematical double-struck
        "411111111111111" + _in_digit_block(0x0660, "1"),  # one non-ASCII digit at the end
    ],
)
def test_check_card_not_ascii_digits_invalid(raw: str) -> None:
    with pytest.raises(InvalidCardError):
        check_card(raw)


@pytest.mark.parametrize("raw", [4111111111111111, None, b"4111111111111111", ["4111"], 4.1])
def test_check_card_not_a_str_invalid(raw: object) -> None:
    with pytest.raises(InvalidCardError):
        check_card(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw", ["4111111111111112", "5555555555554445", "2221000000000008", "4222222222223"]
)
def test_check_card_check_digit_changed_invalid(raw: str) -> None:
    with pytest.raises(InvalidCardError):
        check_card(raw)


def test_invalid_card_error_is_value_error() -> None:
    assert issubclass(InvalidCardError, ValueError)


@pytest.mark.parametrize(
    "raw",
    [
        "4111111111111112",  # bad checksum
        "4111 1111 1111 1112",
        "378282246310005",  # bad brand
        "41111111111111111",  # bad length
        "4111111111111111x",  # bad character
    ],
)
def test_invalid_card_error_message_never_contains_number(raw: str) -> None:
    # WHEN a number is rejected
    with pytest.raises(InvalidCardError) as excinfo:
        check_card(raw)

    # THEN neither the message nor the error's context carries it (or its last four digits)
    digits = "".join(char for char in raw if char.isascii() and char.isdigit())
    error = excinfo.value
    for text in (str(error), repr(error), *map(str, error.args)):
        assert raw not in text
        assert digits not in text
        assert digits[-4:] not in text
    assert error.__cause__ is None
    assert error.__context__ is None


# --- properties ---------------------------------------------------------------------------

_DIGIT_TEXT = "0123456789"


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(brand, number): an allowed prefix, a random body and a correct check digit."""
    brand = draw(st.sampled_from(["visa", "mastercard"]))
    if brand == "visa":
        prefix = "4"
        length = draw(st.sampled_from([13, 16, 19]))
    else:
        prefix = str(draw(st.integers(51, 55) | st.integers(2221, 2720)))
        length = 16
    size = length - 1 - len(prefix)
    body = prefix + draw(st.text(alphabet=_DIGIT_TEXT, min_size=size, max_size=size))
    return brand, body + _check_digit(body)


@PROPERTY_SETTINGS
@given(valid_numbers())
def test_check_card_generated_valid_number_returns_brand_and_last4(
    brand_and_number: tuple[str, str],
) -> None:
    brand, number = brand_and_number

    assert check_card(number) == Card(brand=brand, last4=number[-4:])


@PROPERTY_SETTINGS
@given(valid_numbers(), st.data())
def test_check_card_generated_number_with_separators_same_card(
    brand_and_number: tuple[str, str], data: st.DataObject
) -> None:
    brand, number = brand_and_number
    separators = st.text(alphabet=" -", max_size=3)
    formatted = "".join(data.draw(separators) + char for char in number) + data.draw(separators)

    assert check_card(formatted) == Card(brand=brand, last4=number[-4:])


@PROPERTY_SETTINGS
@given(valid_numbers(), st.data())
def test_check_card_any_single_digit_changed_invalid(
    brand_and_number: tuple[str, str], data: st.DataObject
) -> None:
    # GIVEN a valid number with exactly one digit replaced by a different digit
    _, number = brand_and_number
    index = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from(_DIGIT_TEXT.replace(number[index], "")))
    mutated = number[:index] + replacement + number[index + 1 :]

    # THEN Luhn catches it, so the number is rejected whatever its prefix became
    assert not luhn_valid(mutated)
    with pytest.raises(InvalidCardError):
        check_card(mutated)
