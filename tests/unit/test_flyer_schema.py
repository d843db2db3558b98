"""Reading the versioned migrations of the events catalog (applying them is an integration test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from events_schema import MIGRATIONS_DIR, MigrationError, load_migrations, split_statements


def test_split_statements_comments_and_semicolons_removed() -> None:
    sql = (
        "-- A comment; with a semicolon\n"
        "CREATE TABLE t (\n"
        "    -- a column comment\n"
        "    a INT\n"
        ");\n"
        "\n"
        "ALTER TABLE t ADD COLUMN b INT;  \n"
    )

    assert split_statements(sql) == (
        "CREATE TABLE t (\n    a INT\n)",
        "ALTER TABLE t ADD COLUMN b INT",
    )


def test_load_migrations_versions_in_numeric_order(tmp_path: Path) -> None:
    for name in ("010_later.sql", "002_second.sql", "001_first.sql"):
        (tmp_path / name).write_text("SELECT 1;\n", encoding="utf-8")

    versions = [migration.version for migration in load_migrations(tmp_path)]

    assert versions == ["001_first", "002_second", "010_later"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_short.sql": "SELECT 1;"}, "must look like"),
        ({"001_Upper.sql": "SELECT 1;"}, "must look like"),
        ({"001_empty.sql": "-- nothing\n"}, "no statements"),
        ({"001_a.sql": "SELECT 1;", "001_b.sql": "SELECT 2;"}, "share a version"),
    ],
    ids=["short-number", "upper-case", "empty", "duplicate"],
)
def test_load_migrations_bad_folder_raises(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, sql in files.items():
        (tmp_path / name).write_text(sql, encoding="utf-8")

    with pytest.raises(MigrationError, match=message):
        load_migrations(tmp_path)


def test_load_migrations_shipped_schema_creates_events_table() -> None:
    [first, *_] = load_migrations(MIGRATIONS_DIR)

    assert first.version == "001_events"
    assert first.statements[0].startswith("CREATE TABLE IF NOT EXISTS events")
    assert MIGRATIONS_DIR.parent.name == "flyer"
