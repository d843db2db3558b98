"""An embedded MySQL-protocol server that keeps its tables in SQLite, for running offline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import decimal
import enum
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from mysql_mimic import (  # type: ignore[import-untyped, unused-ignore]
    MysqlServer,
    ResultColumn,
    Session,
    User,
)
from mysql_mimic.auth import (  # type: ignore[import-untyped, unused-ignore]
    IdentityProvider,
    NativePasswordAuthPlugin,
)
from mysql_mimic.connection import Connection  # type: ignore[import-untyped, unused-ignore]
from mysql_mimic.control import LocalControl  # type: ignore[import-untyped, unused-ignore]
from mysql_mimic.errors import ErrorCode, MysqlError  # type: ignore[import-untyped, unused-ignore]
from mysql_mimic.results import infer_type  # type: ignore[import-untyped, unused-ignore]
from mysql_mimic.types import Capabilities, ColumnType  # type: ignore[import-untyped, unused-ignore]
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

# How it works: mysql-mimic speaks the MySQL wire protocol; each statement it receives is parsed
# as MySQL by sqlglot, a few narrow rewrites below cover what SQLite spells differently, and
# sqlglot writes it out for the one SQLite database every client shares.
#
# Not supported, or not like MySQL:
# - transactions: BEGIN/COMMIT/ROLLBACK are accepted and ignored; every statement commits alone.
#   SELECT ... FOR UPDATE/SHARE locks nothing.
# - collations: utf8mb4_bin, ascii_bin (code point order, trailing spaces ignored) and binary.
#   A column without COLLATE compares byte for byte, not case-insensitively as MySQL's default.
# - types are SQLite's: UNSIGNED, lengths and ENUM/SET values are not enforced; DECIMAL is
#   stored as a binary float (returned rounded to its declared scale); DATETIME values are
#   stored as the text the client sent.
# - INSERT ... ON DUPLICATE KEY UPDATE reports 1 affected row for an update (MySQL: 2).
# - statements sqlglot cannot parse or SQLite cannot run: stored procedures, triggers, REPLACE,
#   multi-table UPDATE/DELETE, UPDATE/DELETE ... LIMIT, ALTER TABLE beyond ADD/RENAME/DROP
#   COLUMN, FULLTEXT/SPATIAL indexes, ON UPDATE CURRENT_TIMESTAMP, user variables.
# - GET_LOCK and friends take constant arguments only.
# - index names are database-wide (MySQL: per table); strings must be valid UTF-8 without NUL
#   characters; the binary protocol (server-side prepared statements) on temporal columns.

HOST = "127.0.0.1"
DEFAULT_DATABASE = "catalog"

_START_TIMEOUT_SECONDS = 10
# How long stop() lets disconnected clients' handlers finish before cancelling them.
_STOP_TIMEOUT_SECONDS = 5
# Trailing spaces do not count in these collations (PAD SPACE): 'Rock' and 'Rock ' are equal.
_PAD_SPACE_BINARY_COLLATIONS = ("utf8mb4_bin", "utf8mb3_bin", "utf8_bin", "ascii_bin")
_LOCK_FUNCTIONS = frozenset({"GET_LOCK", "RELEASE_LOCK", "IS_FREE_LOCK", "RELEASE_ALL_LOCKS"})
# What SQLite accepts as a column type: names, then at most one (n) or (n, m).
_SQLITE_TYPE_NAME = re.compile(r"[A-Za-z_]+(?: [A-Za-z_]+)*(?:\(\d+(?:, ?\d+)?\))?")
# Generous enough for any DECIMAL(65, 30), so that rounding never overflows the context.
_DECIMAL_CONTEXT = decimal.Context(prec=100)
_TEMPORAL_COLUMN_TYPES = {
    exp.DataType.Type.DATETIME: ColumnType.DATETIME,
    exp.DataType.Type.DATETIME64: ColumnType.DATETIME,
    exp.DataType.Type.TIMESTAMP: ColumnType.DATETIME,
    exp.DataType.Type.TIMESTAMPTZ: ColumnType.DATETIME,
    exp.DataType.Type.TIMESTAMPLTZ: ColumnType.DATETIME,
    exp.DataType.Type.DATE: ColumnType.DATE,
}
_DECIMAL_TYPES = frozenset({exp.DataType.Type.DECIMAL, exp.DataType.Type.UDECIMAL})


class _ServerError(enum.IntEnum):
    """MySQL server error numbers this server reports beyond those mysql-mimic names."""

    BAD_NULL = 1048
    BAD_DB = 1049
    BAD_TABLE = 1051
    DUP_ENTRY = 1062
    NO_SUCH_TABLE = 1146
    NO_REFERENCED_ROW = 1452
    CHECK_CONSTRAINT_VIOLATED = 3819


# SQLite's extended result codes of constraint failures, as MySQL reports the same failures.
_CONSTRAINT_ERRORS = {
    sqlite3.SQLITE_CONSTRAINT_UNIQUE: _ServerError.DUP_ENTRY,
    sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: _ServerError.DUP_ENTRY,
    sqlite3.SQLITE_CONSTRAINT_NOTNULL: _ServerError.BAD_NULL,
    sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: _ServerError.NO_REFERENCED_ROW,
    sqlite3.SQLITE_CONSTRAINT_CHECK: _ServerError.CHECK_CONSTRAINT_VIOLATED,
}


class EmbeddedMysql:
    """A MySQL server on 127.0.0.1 for PyMySQL clients, storing its one database in SQLite.

    `path` is the SQLite file (created when missing); None keeps everything in memory until
    `stop`. Port 0 picks a free port. Use it as a context manager or call `start` and `stop`.
    """

    def __init__(
        self, path: Path | None = None, *, port: int = 0, database: str = DEFAULT_DATABASE
    ) -> None:
        self._path = path
        self._requested_port = port
        self._database = database
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._catalog: _SqliteCatalog | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._port is None:
            raise RuntimeError("The embedded MySQL server is not running")
        return self._port

    @property
    def url(self) -> str:
        """A DATABASE_URL for this server: `mysql://root:@127.0.0.1:PORT/<database>`."""
        return f"mysql://root:@{HOST}:{self.port}/{self._database}"

    def start(self) -> None:
        """Open the database and serve it from a background thread; return once listening."""
        if self._thread is not None:
            raise RuntimeError("The embedded MySQL server is already running")
        catalog = _SqliteCatalog(self._path)
        listening: concurrent.futures.Future[int] = concurrent.futures.Future()
        thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(catalog, listening),),
            name=f"embedded-mysql-{self._database}",
            daemon=True,
        )
        thread.start()
        try:
            self._port = listening.result(timeout=_START_TIMEOUT_SECONDS)
        except BaseException:
            self._request_stop()
            thread.join()
            catalog.close()
            raise
        self._thread, self._catalog = thread, catalog

    def stop(self) -> None:
        """Disconnect every client, stop listening, close the database. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._request_stop()
        thread.join()
        if self._catalog is not None:
            self._catalog.close()
        self._catalog = self._port = self._loop = self._stop_requested = None

    def __enter__(self) -> EmbeddedMysql:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _request_stop(self) -> None:
        loop, stop_requested = self._loop, self._stop_requested
        if loop is not None and stop_requested is not None:
            # The loop may have ended on its own (a failed start): nothing is left to stop then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_requested.set)

    async def _serve(
        self, catalog: _SqliteCatalog, listening: concurrent.futures.Future[int]
    ) -> None:
        locks = _NamedLocks()
        control = _DisconnectingControl()
        server = MysqlServer(
            session_factory=lambda: _CatalogSession(catalog, locks, self._database),
            control=control,
            identity_provider=_AnyUser(),
        )
        try:
            await server.start_server(host=HOST, port=self._requested_port)
        except Exception as error:  # handed to start(), which raises it
            listening.set_exception(error)
            return
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        listening.set_result(server.sockets()[0].getsockname()[1])
        await self._stop_requested.wait()

        server.close()
        # Clients may stay connected (a warm function keeps its connection): disconnect them,
        # as a stopping MySQL does, rather than wait for each to hang up. The other tasks of
        # this loop are their handlers; one still stuck after that is cancelled.
        await control.disconnect_all()
        handlers = asyncio.all_tasks() - {asyncio.current_task()}
        if handlers:
            _done, stuck = await asyncio.wait(handlers, timeout=_STOP_TIMEOUT_SECONDS)
            for handler in stuck:
                handler.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await server.wait_closed()


@dataclass(frozen=True)
class _Outcome:
    """What one statement did: its rows (None when it returns none) or the rows it changed.

    `last_rowid` is SQLite's: the last row inserted on the connection, by this statement or not.
    """

    column_names: list[str]
    rows: list[tuple[Any, ...]] | None
    affected_rows: int
    last_rowid: int


class _SqliteCatalog:
    """The one SQLite connection every client shares; statements run one at a time."""

    def __init__(self, path: Path | None) -> None:
        # Autocommit (isolation_level None): MySQL with autocommit on, which is what PyMySQL
        # clients here ask for, commits each statement.
        self._connection = sqlite3.connect(
            ":memory:" if path is None else path, isolation_level=None, check_same_thread=False
        )
        # The server thread runs the statements; the lock also keeps `close` from the starting
        # thread away from a statement in flight.
        self._lock = threading.Lock()
        for name in _PAD_SPACE_BINARY_COLLATIONS:
            self._connection.create_collation(name, _compare_pad_space)
        # InnoDB enforces foreign keys; SQLite only when asked. LIKE on a _bin column is
        # case-sensitive in MySQL; SQLite's LIKE ignores ASCII case unless asked.
        self._connection.execute("PRAGMA foreign_keys = ON")
        self._connection.execute("PRAGMA case_sensitive_like = ON")

    def run(self, statements: Sequence[str]) -> _Outcome:
        """Run `statements` in order; report on the last one."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                for statement in statements:
                    cursor.execute(statement)
                if cursor.description is None:
                    return _Outcome([], None, max(cursor.rowcount, 0), cursor.lastrowid or 0)
                names = [column[0] for column in cursor.description]
                return _Outcome(names, cursor.fetchall(), 0, 0)
            finally:
                cursor.close()

    def column_types(self, table: str) -> dict[str, str]:
        """The declared type of each column of `table`; empty when there is no such table."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT name, type FROM pragma_table_info(?)", (table,)
            ).fetchall()
        return {str(name): str(type_) for name, type_ in rows}

    def tables(self) -> list[str]:
        """The tables of the database."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            ).fetchall()
        return [str(name) for (name,) in rows]

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _compare_pad_space(left: str, right: str) -> int:
    """MySQL's _bin order: code points (UTF-8 bytes), the shorter text padded with spaces."""
    width = max(len(left), len(right))
    left, right = left.ljust(width), right.ljust(width)
    return (left > right) - (left < right)


class _NamedLocks:
    """MySQL's named locks (GET_LOCK): owned by a client session, re-entrant, freed with it.

    They live on the server's event loop rather than in SQLite: a client waiting for a lock
    must not hold up the statements of the others, least of all the RELEASE_LOCK it awaits.
    """

    def __init__(self) -> None:
        self._held: dict[str, tuple[object, int]] = {}
        self._changed = asyncio.Condition()

    async def get(self, owner: object, name: str, timeout: float) -> int:
        """1 once `owner` holds `name`; 0 after `timeout` seconds (negative: no limit)."""
        async with self._changed:
            if not self._free_for(owner, name):
                if timeout == 0:
                    return 0
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self._free_for(owner, name)),
                        None if timeout < 0 else timeout,
                    )
                except TimeoutError:
                    return 0
            _holder, count = self._held.get(name, (owner, 0))
            self._held[name] = (owner, count + 1)
            return 1

    async def release(self, owner: object, name: str) -> int | None:
        """1 if released, 0 if another session holds it, None if nobody does."""
        async with self._changed:
            held = self._held.get(name)
            if held is None:
                return None
            holder, count = held
            if holder is not owner:
                return 0
            if count > 1:
                self._held[name] = (owner, count - 1)
            else:
                del self._held[name]
                self._changed.notify_all()
            return 1

    async def release_all(self, owner: object) -> int:
        """Release every lock `owner` holds; return how many acquisitions that undid."""
        async with self._changed:
            mine = {name: count for name, (holder, count) in self._held.items() if holder is owner}
            for name in mine:
                del self._held[name]
            if mine:
                self._changed.notify_all()
            return sum(mine.values())

    def is_free(self, name: str) -> int:
        return int(name not in self._held)

    def _free_for(self, owner: object, name: str) -> bool:
        holder, _count = self._held.get(name, (owner, 0))
        return holder is owner


class _DisconnectingControl(LocalControl):  # type: ignore[misc]
    """mysql-mimic's registry of connections, able to disconnect them all when stopping."""

    def __init__(self) -> None:
        super().__init__()
        self._connection_ids: set[int] = set()

    async def add(self, connection: Any) -> int:
        connection_id: int = await super().add(connection)
        self._connection_ids.add(connection_id)
        return connection_id

    async def remove(self, connection_id: int) -> None:
        self._connection_ids.discard(connection_id)
        await super().remove(connection_id)

    async def disconnect_all(self) -> None:
        # KILL CONNECTION: the client is told, its session closes (freeing its named locks).
        for connection_id in list(self._connection_ids):
            await self.kill(connection_id)


class _AnyPassword(NativePasswordAuthPlugin):  # type: ignore[misc]
    """mysql_native_password that lets every password in: the server only listens locally."""

    def password_matches(self, user: Any, scramble: bytes, nonce: bytes) -> bool:
        return True


class _AnyUser(IdentityProvider):  # type: ignore[misc]
    """Every user name exists and logs in with any password."""

    def get_plugins(self) -> list[Any]:
        return [_AnyPassword()]

    async def get_user(self, username: str) -> Any:
        return User(name=username, auth_plugin=_AnyPassword.name)


class _RowCountConnection(Connection):  # type: ignore[misc]
    """A mysql-mimic connection whose OK packets carry the rows the statement changed.

    mysql-mimic 3.0.5 answers every statement that returns no rows with `self.ok()`, that is
    0 affected rows; PyMySQL returns that count from `cursor.execute`, and the flyer function
    tells a stored flyer from an unchanged row by it. Only the defaults of `ok` change here.
    """

    def ok(self, **kwargs: Any) -> bytes:
        affected_rows, last_insert_id = self.session.take_counts()
        kwargs.setdefault("affected_rows", affected_rows)
        kwargs.setdefault("last_insert_id", last_insert_id)
        return super().ok(**kwargs)  # type: ignore[no-any-return]


class _CatalogSession(Session):  # type: ignore[misc]
    """One client's session: MySQL statements in, SQLite statements run on the shared catalog."""

    middlewares: list[Any]

    def __init__(self, catalog: _SqliteCatalog, locks: _NamedLocks, database: str) -> None:
        super().__init__()
        self._catalog = catalog
        self._locks = locks
        self._database = database
        self._counts = (0, 0)
        self._last_insert_id = 0
        # mysql-mimic's first middleware replaces NOW(), DATABASE() and the like with their
        # values; ours runs it except in DDL, and evaluates the named-lock functions.
        others = [m for m in self.middlewares if m != self._set_var_middleware]
        self.middlewares = [self._functions_middleware, self._named_lock_middleware, *others]

    async def init(self, connection: Any) -> None:
        # MysqlServer builds plain Connection objects and takes no factory for them: swap the
        # class of this one for the subclass that reports affected rows (same state, one method).
        connection.__class__ = _RowCountConnection
        await super().init(connection)

    async def close(self) -> None:
        # Like MySQL, a session's named locks end with it (a crashed migrator frees the lock).
        await self._locks.release_all(self)
        await super().close()

    async def use(self, database: str) -> None:
        self._check_database(database)
        await super().use(database)

    def take_counts(self) -> tuple[int, int]:
        """Affected rows and insert id of the last statement, for its OK packet; then zero."""
        counts, self._counts = self._counts, (0, 0)
        return counts

    async def handle_query(self, sql: str, attrs: dict[str, str]) -> Any:
        # Statements mysql-mimic answers itself (SET, USE, SELECT 1) change no rows.
        self._counts = (0, 0)
        return await super().handle_query(sql, attrs)

    async def schema(self) -> dict[str, dict[str, dict[str, str]]]:
        """Tables and column types, for SHOW TABLES, DESCRIBE and INFORMATION_SCHEMA."""
        tables = {table: self._catalog.column_types(table) for table in self._catalog.tables()}
        return {self._database: tables}

    async def query(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> Any:
        self._check_database(self.database)
        for table in expression.find_all(exp.Table):
            if table.db:
                self._check_database(table.db)
        found_rows = Capabilities.CLIENT_FOUND_ROWS in self.connection.capabilities
        statements = _to_sqlite(expression, count_matched_rows=found_rows)
        try:
            outcome = self._catalog.run(statements)
        except sqlite3.Error as error:
            raise self._mysql_error(expression, error) from error
        if outcome.rows is None:
            insert_id = 0
            if isinstance(expression, exp.Insert) and outcome.affected_rows:
                # MySQL reports the first id of a multi-row INSERT; SQLite the last one.
                insert_id = outcome.last_rowid - outcome.affected_rows + 1
            self._record_changes(outcome.affected_rows, insert_id)
            return None
        if _is_upsert(expression):
            # Its RETURNING rowid: a row for each row inserted or changed.
            rowids = [rowid for (rowid,) in outcome.rows]
            self._record_changes(len(rowids), rowids[0] if rowids else 0)
            return None
        return self._typed_result(expression, outcome.column_names, outcome.rows)

    def _record_changes(self, affected_rows: int, insert_id: int) -> None:
        """Keep what a statement changed for its OK packet (and for LAST_INSERT_ID)."""
        if insert_id:
            self._last_insert_id = insert_id
        self._counts = (affected_rows, insert_id)

    def _parse(self, sql: str) -> list[exp.Expression]:
        # MySQL reports a syntax error as 1064, which PyMySQL raises as ProgrammingError.
        try:
            return super()._parse(sql)  # type: ignore[no-any-return]
        except ParseError as error:
            # sqlglot's own message underlines the token with terminal escape codes.
            where = error.errors[0] if error.errors else {}
            message = (
                f"You have an error in your SQL syntax: {where.get('description', error)}"
                f" near '{where.get('highlight', '')}' at line {where.get('line', 1)}"
            )
            raise MysqlError(message, code=ErrorCode.PARSE_ERROR) from error

    def _check_database(self, database: str | None) -> None:
        if database is None:
            raise MysqlError("No database selected", code=ErrorCode.NO_DB_ERROR)
        if database != self._database:
            raise MysqlError(f"Unknown database '{database}'", code=_ServerError.BAD_DB)

    async def _functions_middleware(self, q: Any) -> Any:
        if isinstance(q.expression, (exp.Create, exp.Alter)):
            # A column's DEFAULT CURRENT_TIMESTAMP must stay an expression, not become the time
            # of the CREATE TABLE.
            return await q.next()
        for call in list(q.expression.find_all(exp.Anonymous)):
            if call.name.upper() == "LAST_INSERT_ID" and not call.expressions:
                # Per session, as in MySQL: the shared SQLite connection only knows the last one.
                _replace_with_value(call, self._last_insert_id)
        return await self._set_var_middleware(q)

    async def _named_lock_middleware(self, q: Any) -> Any:
        for call in list(q.expression.find_all(exp.Anonymous)):
            name = call.name.upper()
            if name in _LOCK_FUNCTIONS:
                _replace_with_value(call, await self._call_lock_function(name, call))
        return await q.next()

    async def _call_lock_function(self, name: str, call: exp.Anonymous) -> int | None:
        arguments = []
        for argument in call.expressions:
            if not isinstance(argument, (exp.Literal, exp.Null)):
                raise MysqlError(
                    f"{name} takes constant arguments here", code=ErrorCode.NOT_SUPPORTED_YET
                )
            arguments.append(argument.to_py())
        expected = {"GET_LOCK": 2, "RELEASE_ALL_LOCKS": 0}.get(name, 1)
        if len(arguments) != expected:
            raise MysqlError(
                f"Incorrect parameter count in the call to native function '{name}'",
                code=ErrorCode.PARSE_ERROR,
            )
        if name == "RELEASE_ALL_LOCKS":
            return await self._locks.release_all(self)
        lock_name = arguments[0]
        if lock_name is None:
            return None
        if name == "GET_LOCK":
            timeout = arguments[1]
            return await self._locks.get(self, str(lock_name), float(timeout or 0))
        if name == "RELEASE_LOCK":
            return await self._locks.release(self, str(lock_name))
        return self._locks.is_free(str(lock_name))

    def _mysql_error(self, expression: exp.Expression, error: sqlite3.Error) -> MysqlError:
        code = _CONSTRAINT_ERRORS.get(error.sqlite_errorcode)
        if code is not None:
            return MysqlError(str(error), code=code)
        missing = [table for table in _source_tables(expression) if not self._exists(table)]
        if missing:
            if isinstance(expression, exp.Drop):
                return MysqlError(f"Unknown table '{missing[0]}'", code=_ServerError.BAD_TABLE)
            return MysqlError(
                f"Table '{self._database}.{missing[0]}' doesn't exist",
                code=_ServerError.NO_SUCH_TABLE,
            )
        return MysqlError(f"SQLite could not run the statement: {error}")

    def _exists(self, table: str) -> bool:
        return bool(self._catalog.column_types(table))

    def _typed_result(
        self, expression: exp.Expression, names: list[str], rows: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """Rows and columns, with MySQL's type for DECIMAL and temporal columns.

        SQLite returns a DECIMAL as a float and a DATETIME as text: declaring their types lets
        clients convert them as they would from MySQL. Other columns take the type of their
        first value that is not NULL. (Typed here rather than by mysql-mimic, which infers by
        column name and fails on two columns of the same name.)
        """
        columns: list[Any] = []
        decimals: dict[int, int | None] = {}
        for index, (name, type_) in enumerate(
            zip(names, self._mysql_types(expression, len(names)), strict=True)
        ):
            if type_ is not None and type_.this in _DECIMAL_TYPES:
                decimals[index] = _decimal_scale(type_)
                column_type = ColumnType.NEWDECIMAL
            elif type_ is not None and type_.this in _TEMPORAL_COLUMN_TYPES:
                column_type = _TEMPORAL_COLUMN_TYPES[type_.this]
            else:
                values = (row[index] for row in rows if row[index] is not None)
                first = next(values, None)
                column_type = ColumnType.NULL if first is None else infer_type(first)
            columns.append(ResultColumn(name, column_type))
        if decimals:
            rows = [
                tuple(
                    _as_decimal(value, decimals[index])
                    if index in decimals and isinstance(value, (int, float))
                    else value
                    for index, value in enumerate(row)
                )
                for row in rows
            ]
        return rows, columns

    def _mysql_types(self, expression: exp.Expression, count: int) -> list[exp.DataType | None]:
        """The MySQL type of each result column, as sqlglot infers it from the tables' types."""
        unknown: list[exp.DataType | None] = [None] * count
        if not isinstance(expression, exp.Query):
            return unknown
        schema = MappingSchema(
            {
                table: {column: type_ or "UNKNOWN" for column, type_ in columns.items()}
                for table in _source_tables(expression)
                if (columns := self._catalog.column_types(table))
            },
            dialect="mysql",
        )
        try:
            typed = annotate_types(
                qualify(
                    _without_database(expression.copy()),
                    schema=schema,
                    dialect="mysql",
                    validate_qualify_columns=False,
                ),
                schema=schema,
                dialect="mysql",
            )
        except SqlglotError:
            # The typing is a refinement: without it values keep the type of their Python value.
            return unknown
        if not isinstance(typed, exp.Query) or len(typed.selects) != count:
            return unknown
        return [select.type for select in typed.selects]


def _replace_with_value(call: exp.Expression, value: int | None) -> None:
    """Put `value` where `call` was, keeping the call's text as the column name in a SELECT."""
    literal = exp.convert(value)
    if isinstance(call.parent, exp.Select) and call.arg_key == "expressions":
        call.replace(exp.alias_(literal, exp.to_identifier(call.sql(dialect="mysql"))))
    else:
        call.replace(literal)


def _source_tables(expression: exp.Expression) -> list[str]:
    """Names of the tables `expression` reads or writes, not counting a table it creates."""
    defined = {cte.alias for cte in expression.find_all(exp.CTE)}
    created = None
    if isinstance(expression, exp.Create):
        target = expression.this
        created = target.this if isinstance(target, exp.Schema) else target
    names: list[str] = []
    for table in expression.find_all(exp.Table):
        if table is created or not table.name or table.name in defined | set(names):
            continue
        names.append(table.name)
    return names


def _without_database(expression: exp.Expression) -> exp.Expression:
    """`expression` with `db.table` written `table`: the server has one database."""
    for table in expression.find_all(exp.Table):
        table.set("db", None)
        table.set("catalog", None)
    return expression


def _decimal_scale(type_: exp.DataType) -> int | None:
    params = type_.expressions
    if len(params) == 2 and isinstance(params[1].this, exp.Literal):
        return int(params[1].this.to_py())
    return None


def _as_decimal(value: float, scale: int | None) -> decimal.Decimal:
    # repr gives the shortest text that reads back as the same float: 19.99, not 19.98999...
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
    if scale is None:
        return number
    return number.quantize(decimal.Decimal(1).scaleb(-scale), context=_DECIMAL_CONTEXT)


def _to_sqlite(statement: exp.Expression, *, count_matched_rows: bool) -> list[str]:
    """The SQLite statements that do what the MySQL `statement` does."""
    if isinstance(statement, exp.Command):
        # What sqlglot could not parse it passes on as raw text: not SQL SQLite would agree on.
        raise MysqlError(
            f"Not supported by the embedded server: {statement.sql(dialect='mysql')[:200]}",
            code=ErrorCode.NOT_SUPPORTED_YET,
        )
    statement = _without_database(statement.copy())
    for introducer in list(statement.find_all(exp.Introducer)):
        # _binary'...' is how PyMySQL sends bytes; other introducers name a character set.
        literal = introducer.expression
        is_binary = introducer.name.lower() == "_binary"
        introducer.replace(exp.cast(literal, "BLOB") if is_binary else literal)
    for select in statement.find_all(exp.Select):
        # Each statement runs alone and commits at once: a locking read has nothing to hold.
        select.set("locks", None)

    follow_ups: list[str] = []
    if isinstance(statement, exp.Create) and isinstance(statement.this, exp.Schema):
        follow_ups = _adapt_create_table(statement)
    elif isinstance(statement, exp.Create):
        statement.set("properties", None)
    elif isinstance(statement, exp.Alter):
        for column in statement.find_all(exp.ColumnDef):
            _adapt_column(column)
    elif isinstance(statement, exp.TruncateTable):
        # No TRUNCATE in SQLite. Unlike MySQL this keeps the AUTO_INCREMENT counter.
        return [_sql(exp.delete(table)) for table in statement.expressions]
    elif isinstance(statement, exp.Insert):
        _adapt_on_duplicate_key(statement, count_matched_rows=count_matched_rows)
    elif isinstance(statement, exp.Update) and not count_matched_rows:
        # MySQL counts the rows an UPDATE changed; SQLite the rows it matched. Leaving out the
        # rows that would not change makes both counts the same, and the data too.
        guard = _changes_something(statement.expressions)
        where = statement.args.get("where")
        statement.set("where", exp.Where(this=exp.and_(where.this, guard) if where else guard))
    return [_sql(statement), *follow_ups]


def _sql(statement: exp.Expression) -> str:
    try:
        return statement.sql(dialect="sqlite", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as error:
        raise MysqlError(
            f"Not supported by the embedded server: {error}", code=ErrorCode.NOT_SUPPORTED_YET
        ) from error


def _adapt_create_table(create: exp.Create) -> list[str]:
    """Rewrite MySQL's CREATE TABLE for SQLite; return the CREATE INDEX statements it implies."""
    schema = create.this
    table = schema.this.name
    # ENGINE, DEFAULT CHARSET, COLLATE: storage details SQLite has no use for.
    create.set("properties", None)
    indexes: list[str] = []
    for element in list(schema.expressions):
        if isinstance(element, exp.ColumnDef):
            _adapt_column(element)
        elif isinstance(element, exp.IndexColumnConstraint):
            # KEY/INDEX inside CREATE TABLE: SQLite creates indexes with their own statement.
            if element.args.get("kind"):
                raise MysqlError(
                    f"{element.args['kind']} indexes are not supported",
                    code=ErrorCode.NOT_SUPPORTED_YET,
                )
            columns = [column.copy() for column in element.expressions]
            name = element.name or f"{table}_{columns[0].name}"
            index = exp.Create(
                kind="INDEX",
                exists=create.args.get("exists"),
                this=exp.Index(
                    this=exp.to_identifier(name),
                    table=exp.to_table(table),
                    params=exp.IndexParameters(columns=columns),
                ),
            )
            indexes.append(_sql(index))
            element.pop()
        elif isinstance(element, exp.UniqueColumnConstraint) and isinstance(
            element.this, exp.Schema
        ):
            # UNIQUE KEY name (columns): SQLite takes UNIQUE (columns), its name is not needed.
            element.set("this", exp.Schema(expressions=element.this.expressions))
    return indexes


def _adapt_column(column: exp.ColumnDef) -> None:
    """Keep the MySQL type (SQLite derives its storage from the name) minus what SQLite lacks."""
    for constraint in list(column.constraints):
        if isinstance(constraint.kind, exp.CharacterSetColumnConstraint):
            constraint.pop()  # SQLite stores all text as UTF-8.
        elif isinstance(constraint.kind, exp.OnUpdateColumnConstraint):
            raise MysqlError(
                "ON UPDATE column values are not supported", code=ErrorCode.NOT_SUPPORTED_YET
            )
    kind = column.args.get("kind")
    if column.find(exp.AutoIncrementColumnConstraint):
        # Only an INTEGER PRIMARY KEY column numbers new rows by itself in SQLite.
        column.set("kind", exp.DataType.build("INTEGER"))
    elif isinstance(kind, exp.DataType):
        # The MySQL name keeps DECIMAL and DATETIME recognisable when results are typed.
        name = kind.sql(dialect="mysql").replace(" UNSIGNED", "")
        if not _SQLITE_TYPE_NAME.fullmatch(name):
            name = "TEXT"  # ENUM(...), SET(...): their values are not enforced.
        column.set("kind", exp.Var(this=name))


def _is_upsert(statement: exp.Expression) -> bool:
    """INSERT ... ON DUPLICATE KEY UPDATE."""
    conflict = statement.args.get("conflict") if isinstance(statement, exp.Insert) else None
    return conflict is not None and bool(conflict.args.get("duplicate"))


def _adapt_on_duplicate_key(insert: exp.Insert, *, count_matched_rows: bool) -> None:
    """ON DUPLICATE KEY UPDATE c = VALUES(c) -> ON CONFLICT DO UPDATE SET c = excluded.c.

    SQLite's changes() and last_insert_rowid() cannot tell an insert from an update here, so the
    statement returns the rowid of each row it inserts or changes, which `query` counts.
    """
    if not _is_upsert(insert):
        return
    conflict = insert.args["conflict"]
    assignments = [assignment.transform(_values_to_excluded) for assignment in conflict.expressions]
    guard = None if count_matched_rows else exp.Where(this=_changes_something(assignments))
    # Without a conflict target SQLite, like MySQL, updates on a clash with any unique key.
    insert.set(
        "conflict",
        exp.OnConflict(expressions=assignments, action=exp.Var(this="DO UPDATE"), where=guard),
    )
    insert.set("returning", exp.Returning(expressions=[exp.column("rowid")]))


def _values_to_excluded(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.upper() == "VALUES":
        (column,) = node.expressions
        return exp.column(column.name, table="excluded")
    return node


def _changes_something(assignments: Sequence[exp.Expression]) -> exp.Expression:
    """True for a row that at least one `column = value` assignment would change.

    Compared byte for byte (COLLATE BINARY): 'Rock' -> 'Rock ' is a change, as in MySQL,
    although the PAD SPACE collations find both equal.
    """
    unchanged = [
        exp.Is(
            this=assignment.this.copy(),
            expression=exp.Collate(
                this=exp.paren(assignment.expression.copy(), copy=False),
                expression=exp.Var(this="BINARY"),
            ),
        )
        for assignment in assignments
    ]
    return exp.not_(exp.and_(*unchanged))
