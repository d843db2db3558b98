"""Finds card numbers (PANs) in text: digit runs of 13-19 that pass Luhn, typed plain or grouped.

The purchase function refuses a request whose ids hold one, and the tests use it to prove that
nothing the system writes (logs, table items, execution histories, answers) holds a card number.
It errs towards reporting: any Luhn-valid run of 13-19 digits counts,
whatever its prefix, except what is recognisably something else:

- digits glued to letters or joined to them by a dash (hex ids, UUIDs, ARNs, trace ids);
- either side of a decimal point (floats, durations);
- a plain run longer than 19 digits (no 13-19 digit window of it is tried);
- a plain run that reads as a time: epoch milli-, micro- or nanoseconds from 2000 to 2039, or a
  compact `yyyymmddHHMMSS[fff]` timestamp of the years 2000-2099.

Groups joined by single spaces or dashes (`4111 1111 1111 1111`, `5555-5555-5555-4444`) are one
run. When a grouped run as a whole is no card number, every sequence of whole consecutive groups
of 13-19 digits is tried too, so that `qty 2 4111 1111 1111 1111` is still caught.
"""

from __future__ import annotations

import re
from datetime import datetime

# One Luhn for validating cards and for finding them.
from card_validation import luhn_valid

__all__ = ["find_card_numbers", "holds_card_number"]

MIN_DIGITS = 13
MAX_DIGITS = 19
# Digit groups joined by one space or one dash; greedy, so each match is a maximal run.
_RUN = re.compile(r"[0-9]+(?:[ -][0-9]+)*")
_GROUP = re.compile(r"([ -]?)([0-9]+)")
# Epoch times in ms, us and ns are 13, 16 and 19 digits long. Up to 2040 they start with 1, 20,
# 21 or 220: never a Visa (4) or Mastercard (51-55, 2221-2720) prefix.
_EPOCH_FROM = 946_684_800  # 2000-01-01
_EPOCH_UNTIL = 2_208_988_800  # 2040-01-01
_EPOCH_SCALES = {13: 10**3, 16: 10**6, 19: 10**9}


def find_card_numbers(text: str) -> list[str]:
    """Every card number in `text`, as its digits alone, in order of appearance."""
    found: list[str] = []
    for run in _RUN.finditer(text):
        groups = [(match.group(1), match.group(2)) for match in _GROUP.finditer(run.group())]
        groups = _drop_attached_groups(text, run.start(), run.end(), groups)
        found.extend(_card_numbers_in(groups))
    return found


def holds_card_number(text: str) -> bool:
    """Whether `text` holds a card number anywhere, typed plain or grouped."""
    return bool(find_card_numbers(text))


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _drop_attached_groups(
    text: str, start: int, end: int, groups: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The run's groups without those that belong to a word or a decimal number beside it."""
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    left_attached = bool(before) and (
        _is_word(before[-1])
        or before[-1] == "."
        or (before[-1] == "-" and len(before) == 2 and _is_word(before[0]))
    )
    right_attached = bool(after) and (
        _is_word(after[0])
        or (after[0] == "." and len(after) == 2 and after[1].isdigit())
        or (after[0] == "-" and len(after) == 2 and _is_word(after[1]))
    )
    first, last = 0, len(groups)
    if left_attached:
        # The first group is part of the word; so is every group dash-joined to it.
        first = 1
        while first < last and groups[first][0] == "-":
            first += 1
    if right_attached:
        # The last group is part of the word; so is every group dash-joined to it.
        last -= 1
        while last > first and groups[last][0] == "-":
            last -= 1
    return groups[first:last]


def _card_numbers_in(groups: list[tuple[str, str]]) -> list[str]:
    digits = "".join(group for _, group in groups)
    whole_is_card = MIN_DIGITS <= len(digits) <= MAX_DIGITS and luhn_valid(digits)
    if len(groups) == 1:
        # A plain run: only as a whole, and not when it reads as a time.
        return [digits] if whole_is_card and not _is_time(digits) else []
    if whole_is_card:
        return [digits]
    found = []
    for first in range(len(groups)):
        candidate = ""
        # At most 19 groups can add up to 19 digits: never walk the rest of a long run.
        for _, group in groups[first : first + MAX_DIGITS]:
            candidate += group
            if len(candidate) > MAX_DIGITS:
                break
            # The whole run was tried above.
            if len(candidate) >= MIN_DIGITS and candidate != digits and luhn_valid(candidate):
                found.append(candidate)
    return found


def _is_time(digits: str) -> bool:
    scale = _EPOCH_SCALES.get(len(digits))
    if scale is not None and _EPOCH_FROM <= int(digits) // scale < _EPOCH_UNTIL:
        return True
    if len(digits) in (14, 17) and digits.startswith("20"):
        try:
            datetime.strptime(digits[:14], "%Y%m%d%H%M%S")
        except ValueError:
            return False
        return True
    return False
