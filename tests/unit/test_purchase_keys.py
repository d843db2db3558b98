"""The keys a purchase writes under never alias: claims, attempts and idempotency records."""

from __future__ import annotations

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from card_validation import Card
from purchase_idempotency import RECORD_KEY_JMESPATH, KeyedSale
from purchase_request import MAX_SHOW_ID_LENGTH, MAX_USER_ID_LENGTH
from purchase_workflow import Sale, attempt_id

CARD = Card("visa", "1111")
# Ids built mostly from the characters keys are joined with, so that collisions are likely to
# be tried: separators, escapes, quotes, non-ASCII and astral characters.
PIECES = st.sampled_from(["-", ":", "\\", "#", '"', ",", "[", " ", "a", "b", "é", "e\u0301", "😀"])
USER_IDS = st.lists(PIECES, min_size=1, max_size=MAX_USER_ID_LENGTH).map("".join)
SHOW_IDS = st.lists(PIECES, min_size=1, max_size=MAX_SHOW_ID_LENGTH).map("".join)
KEYS = st.lists(st.sampled_from(["-", ":", "\\", '"', ",", "a", "b"]), min_size=1, max_size=128)
QUANTITIES = st.integers(min_value=1, max_value=10)


def idempotency_record_key(user_id: str, key: str) -> object:
    """What Powertools digests for the record: the configured JMESPath over the data."""
    return jmespath.search(RECORD_KEY_JMESPATH, {"buyer": user_id, "key": key})


def test_claim_keys_of_the_issues_pairs_differ() -> None:
    # (vic-AC, DC) and (vic, AC-DC) once shared one claim
    assert Sale("vic-AC", "DC", 1, CARD).claim_key != Sale("vic", "AC-DC", 1, CARD).claim_key


def test_claim_key_keeps_the_seeds_form_for_a_plain_user_id() -> None:
    sale = Sale("ana", "Rock-en-el-Parque", 1, CARD)
    assert sale.claim_key == sale.execution_id == "ana-Rock-en-el-Parque"


def test_attempts_of_the_issues_pairs_differ() -> None:
    # user "a:b" with key "c" and user "a" with key "b:c" were one attempt
    first = attempt_id(Sale("a:b", "Rock", 5, CARD), "c")
    second = attempt_id(Sale("a", "Rock", 5, CARD), "b:c")
    assert first != second
    assert idempotency_record_key("a:b", "c") != idempotency_record_key("a", "b:c")


@given(USER_IDS, SHOW_IDS, USER_IDS, SHOW_IDS)
def test_claim_keys_never_alias(user_a: str, show_a: str, user_b: str, show_b: str) -> None:
    same = Sale(user_a, show_a, 1, CARD).claim_key == Sale(user_b, show_b, 1, CARD).claim_key
    assert same == ((user_a, show_a) == (user_b, show_b))


@given(
    st.tuples(USER_IDS, SHOW_IDS, QUANTITIES, KEYS.map("".join)),
    st.tuples(USER_IDS, SHOW_IDS, QUANTITIES, KEYS.map("".join)),
)
def test_attempt_ids_never_alias(
    a: tuple[str, str, int, str], b: tuple[str, str, int, str]
) -> None:
    same = attempt_id(Sale(*a[:3], CARD), a[3]) == attempt_id(Sale(*b[:3], CARD), b[3])
    assert same == (a == b)


@given(USER_IDS, KEYS.map("".join), USER_IDS, KEYS.map("".join))
def test_idempotency_record_keys_never_alias(
    user_a: str, key_a: str, user_b: str, key_b: str
) -> None:
    same = idempotency_record_key(user_a, key_a) == idempotency_record_key(user_b, key_b)
    assert same == ((user_a, key_a) == (user_b, key_b))


def test_keyed_sale_carries_what_the_record_key_reads() -> None:
    # The JMESPath must name KeyedSale's own fields, or Powertools would key on nulls.
    keyed = KeyedSale(buyer="ana", key="order-1", request=Sale("ana", "Rock", 1, CARD))
    data = {"buyer": keyed.buyer, "key": keyed.key, "request": None}
    assert jmespath.search(RECORD_KEY_JMESPATH, data) == ["ana", "order-1"]


@pytest.mark.parametrize("user_id", ["a-b", "a\\-b", "a\\", "-", "\\\\"])
def test_claim_key_escapes_are_undone_by_reading_up_to_the_first_bare_dash(user_id: str) -> None:
    # The key's user part reads back: unescape up to the first unescaped dash.
    key = Sale(user_id, "Show-1", 1, CARD).claim_key
    user, index, escaped = [], 0, False
    while True:
        char = key[index]
        index += 1
        if escaped:
            user.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "-":
            break
        else:
            user.append(char)
    assert ("".join(user), key[index:]) == (user_id, "Show-1")
