"""Opening the DuckDB file, migrating it, and handing out per-thread cursors."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from visor.errors import StoreError
from visor.store.schema import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)


def default_memory_limit() -> str:
    """A quarter of the machine's RAM, at most 4 GB (DuckDB's own default is 80%)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return "25%"
    return f"{min(total // 4, 4 << 30) >> 20}MiB"


class Store:
    """One DuckDB file. Use `cursor()` from any thread; `transaction()` for atomic writes."""

    def __init__(
        self,
        path: Path | str,
        *,
        migrate_to: int = SCHEMA_VERSION,
        memory_limit: str | None = None,
    ) -> None:
        """`memory_limit`: the most memory DuckDB may hold (DuckDB's setting, e.g. "25%" or
        "4GB"; None: DuckDB's default)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {"memory_limit": memory_limit} if memory_limit else {}
        try:
            self._con = duckdb.connect(str(self.path), config=config)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise StoreError(
                    f"{self.path} is in use by another visor process (stop it, or use its "
                    "HTTP API while it runs)"
                ) from None
            raise StoreError(f"cannot open {self.path}: {e}") from None
        except (duckdb.ParserException, duckdb.InvalidInputException) as e:
            raise StoreError(f"VISOR_DB_MEMORY {memory_limit!r}: {e}") from None
        except duckdb.Error as e:
            raise StoreError(f"{self.path} is not a visor store: {e}") from None
        self._local = threading.local()
        self._migrate(migrate_to)

    # -- connections ---------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor (DuckDB connections are not shared between threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self.cursor()
        cur.begin()
        try:
            yield cur
        except BaseException:
            cur.rollback()
            raise
        cur.commit()

    def close(self) -> None:
        self._con.close()

    # -- helpers used by the repositories -------------------------------------------------

    def query(
        self,
        sql: str,
        params: list[Any] | tuple[Any, ...] = (),
        relations: Mapping[str, pa.Table] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of `sql`; `relations` are Arrow tables it may read by name (e.g. a large set
        of ids: a registered table is joined ~8x faster than a list parameter of 500K ids)."""
        cur = self.cursor()
        with self.registered(cur, relations):
            return cur.execute(sql, params).fetchall()

    def query_one(
        self,
        sql: str,
        params: list[Any] | tuple[Any, ...] = (),
        relations: Mapping[str, pa.Table] | None = None,
    ) -> tuple[Any, ...] | None:
        cur = self.cursor()
        with self.registered(cur, relations):
            # All rows (callers ask for one): only a result read to its end is finished, and
            # an unfinished one blocks this thread's cursor.
            rows = cur.execute(sql, params).fetchall()
        return rows[0] if rows else None

    @staticmethod
    @contextmanager
    def registered(
        cur: duckdb.DuckDBPyConnection, relations: Mapping[str, pa.Table] | None
    ) -> Iterator[None]:
        """`relations` readable by name on `cur` for the duration of the block."""
        for name, table in (relations or {}).items():
            cur.register(name, table)
        try:
            yield
        finally:
            for name in relations or {}:
                cur.unregister(name)

    def query_dicts(
        self, sql: str, params: list[Any] | tuple[Any, ...] = ()
    ) -> list[dict[str, Any]]:
        cur = self.cursor().execute(sql, params)
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def query_arrow(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> pa.Table:
        # A cursor of its own: `sql()` refuses to run while this thread's cursor holds the
        # unread result of an earlier execute() (e.g. an INSERT's row count).
        cur = self._con.cursor()
        try:
            return cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()

    def query_batches(
        self, sql: str, params: list[Any] | tuple[Any, ...] = (), rows: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The result in Arrow batches of about `rows` rows, read as they are used."""
        cur = self._con.cursor()
        try:
            yield from cur.sql(sql, params=params).to_arrow_reader(rows)
        finally:
            cur.close()

    @staticmethod
    def insert_arrow(cur: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
        """Append an Arrow table whose columns are named like the table's."""
        cur.register("_visor_batch", data)
        try:
            cols = ", ".join(data.column_names)
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _visor_batch")
        finally:
            cur.unregister("_visor_batch")

    # -- schema -----------------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        """Whether the table exists (vector tables are made with their first vectors)."""
        row = self.query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        )
        return bool(row and row[0])

    @property
    def schema_version(self) -> int:
        if not self.has_table("schema_version"):
            return 0
        found = self.query_one("SELECT max(version) FROM schema_version")
        return int(found[0]) if found and found[0] is not None else 0

    def _migrate(self, target: int) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer visor (schema {current}; this visor reads up "
                f"to {SCHEMA_VERSION}): upgrade visor, or point VISOR_HOME elsewhere"
            )
        if current >= target:
            return
        with self.transaction() as cur:
            if current == 0:
                cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            for version in range(current, target):
                cur.execute(MIGRATIONS[version])
            cur.execute("DELETE FROM schema_version")
            cur.execute("INSERT INTO schema_version VALUES (?)", [target])
