"""A show as its organiser describes it, checked once, and its row in the events catalog."""

from __future__ import annotations

import contextlib
import enum
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from card_numbers import holds_card_number
from events_db import connect_waiting_out_a_resume
from flyer_config import DbSettings

# The catalog's limits (migrations/001_events.sql): VARCHAR(255), DECIMAL(10, 2), INT UNSIGNED.
NAME_MAX_CHARACTERS = 255
PRICE_MAX = Decimal("99999999.99")
TICKETS_MAX = 2**32 - 1

# Plain values, never VALUES(col) or a row alias: MySQL 8.0, 8.4 and MariaDB read it alike.
_UPSERT_SHOW = """
INSERT INTO events (name, ticket_price, tickets_available)
VALUES (%(name)s, %(price)s, %(tickets)s)
ON DUPLICATE KEY UPDATE ticket_price = %(price)s, tickets_available = %(tickets)s
"""


class InvalidShowError(ValueError):
    """The show as given cannot be stored; the message says which value and why."""


@dataclass(frozen=True)
class ShowSpec:
    """A show: its name (also its showId), ticket price and the tickets it has in all."""

    name: str
    ticket_price: Decimal
    # Sold and unsold together: the catalog's tickets_available is the stock the show was
    # created with; ShowTickets holds what is left of it.
    tickets: int


class CatalogOutcome(enum.Enum):
    """What writing one show did to its catalog row."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def parse_show(name: object, ticket_price: object, tickets: object) -> ShowSpec:
    """The show described by these raw values (command-line text or JSON), or InvalidShowError.

    The name is stored in Unicode NFC, as the flyer function matches file names.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidShowError("name is missing: give the show's name (its showId)")
    if name != name.strip():
        raise InvalidShowError(f"name {name!r} starts or ends with spaces")
    name = unicodedata.normalize("NFC", name)
    if len(name) > NAME_MAX_CHARACTERS:
        raise InvalidShowError(f"name is {len(name)} characters long; at most 255")
    if "#" in name:
        # `<show>#<i>` keys a show's bucket and `<show>#sNN` its sale records' partitions.
        raise InvalidShowError("name holds '#', which joins a show's name to its internal keys")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name):
        # Format characters (U+200B, U+202E) make two different names look the same.
        raise InvalidShowError("name holds a control or format character")
    if holds_card_number(name):
        # The name is the showId, stored in every claim and sale record: never a card number.
        raise InvalidShowError("name holds a card number")
    return ShowSpec(name, _price(ticket_price), _tickets(tickets))


def _price(value: object) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidShowError("ticket price is missing: give it in the currency's units")
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidShowError(f"ticket price {value!r} is not a number")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidShowError(f"ticket price {value!r} is not a number") from None
    if not price.is_finite() or price < 0:
        raise InvalidShowError(f"ticket price {value!r} must be zero or more")
    if price != price.quantize(Decimal("0.01")):
        raise InvalidShowError(f"ticket price {value!r} has more than 2 decimals")
    if price > PRICE_MAX:
        raise InvalidShowError(f"ticket price {value!r} is above {PRICE_MAX}")
    return price.quantize(Decimal("0.01"))


def _tickets(value: object) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidShowError("tickets is missing: give how many tickets the show has in all")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if type(value) is not int or value < 0:
        raise InvalidShowError(f"tickets {value!r} must be a whole number, zero or more")
    if value > TICKETS_MAX:
        raise InvalidShowError(f"tickets {value!r} is above {TICKETS_MAX}")
    return value


def upsert_show(connection: Any, show: ShowSpec) -> CatalogOutcome:
    """Create the show's row or set its price and tickets; unchanged values write nothing."""
    parameters = {"name": show.name, "price": show.ticket_price, "tickets": show.tickets}
    with connection.cursor() as cursor:
        # Affected rows without CLIENT_FOUND_ROWS (PyMySQL's default): 1 inserted, 2 updated,
        # 0 when the row already held these values.
        affected = cursor.execute(_UPSERT_SHOW, parameters)
    return {1: CatalogOutcome.CREATED, 2: CatalogOutcome.UPDATED}.get(
        affected, CatalogOutcome.UNCHANGED
    )


def write_show(settings: DbSettings, show: ShowSpec) -> CatalogOutcome:
    """Upsert `show` over a connection of its own (waiting out a resume), then close it.

    The schema must be in place: the deployment (catalog_users) or `make local` migrates it.
    """
    connection = connect_waiting_out_a_resume(settings)
    with contextlib.closing(connection):
        return upsert_show(connection, show)
