"""The store file: migrations forward, refusal of newer files, one process at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from visor.errors import StoreError
from visor.store import SCHEMA_VERSION, Store


def test_older_store_is_upgraded_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old = Store(path, migrate_to=1)
    old.cursor().execute(
        "INSERT INTO datasets (id, name, root, format, num_samples, num_labels, categories) "
        "VALUES (1, 'kept', '/x', 'images', 0, 0, [])"
    )
    assert old.schema_version == 1
    old.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.query("SELECT name FROM datasets") == [("kept",)]
    assert store.query("SELECT count(*) FROM embedding_models") == [(0,)]
    store.close()


def test_newer_store_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    store = Store(path)
    store.cursor().execute("UPDATE schema_version SET version = 99")
    store.close()
    with pytest.raises(StoreError, match=r"written by a newer visor \(schema 99"):
        Store(path)


def test_store_in_use_by_another_process_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys,time; c=duckdb.connect({str(path)!r}); "
            "print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
        with pytest.raises(StoreError, match="in use by another visor process"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()
