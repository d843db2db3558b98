"""Card number checks (brand, length, Luhn) that keep only the brand and the last four digits."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Card", "InvalidCardError", "check_card", "luhn_valid"]

# A set, not str.isdigit()/int(): those accept Arabic-Indic, full-width and other Unicode
# digits, which no card network issues and which would slip past as "numbers".
_ASCII_DIGITS = frozenset("0123456789")
# Only the separators people type when copying a number off a card; anything else is rejected
# rather than guessed at.
_SEPARATORS = str.maketrans("", "", " -")
_VISA_LENGTHS = frozenset({13, 16, 19})
_MASTERCARD_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Card:
    """What the system may keep of a card: never the full number."""

    brand: str  # "visa" or "mastercard"
    last4: str


class InvalidCardError(ValueError):
    """The card number is not an accepted Visa or Mastercard number.

    Messages are fixed texts: the number must never reach a log line or an API response.
    """


def luhn_valid(digits: str) -> bool:
    """Return whether an ASCII digit string passes the Luhn checksum (False if empty)."""
    if not digits or not _ASCII_DIGITS.issuperset(digits):
        return False
    total = 0
    # From the right, every second digit is doubled; a two-digit product counts as its digit sum.
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - ord("0")
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _brand(digits: str) -> str | None:
    if digits[0] == "4" and len(digits) in _VISA_LENGTHS:
        return "visa"
    # Safe to use int() here: digits is already known to be ASCII 0-9 only.
    if len(digits) == _MASTERCARD_LENGTH and (
        51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720
    ):
        return "mastercard"
    return None


def check_card(raw: str) -> Card:
    """Validate a typed card number and return its brand and last four digits.

    Raises InvalidCardError for anything that is not a Luhn-valid Visa or Mastercard number.
    """
    # Defensive: the value comes from parsed JSON, where a number or null is one typo away.
    if not isinstance(raw, str):
        raise InvalidCardError("card number must be a string")
    digits = raw.translate(_SEPARATORS)
    if not digits or not _ASCII_DIGITS.issuperset(digits):
        raise InvalidCardError("card number must contain only digits, spaces and dashes")
    brand = _brand(digits)
    if brand is None:
        raise InvalidCardError("card brand or length is not accepted")
    if not luhn_valid(digits):
        raise InvalidCardError("card number checksum is wrong")
    return Card(brand=brand, last4=digits[-4:])
