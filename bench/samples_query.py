"""Latency of `GET /samples` pages with a class filter on a large dataset.

    .venv/bin/python bench/samples_query.py --samples 1000000

Builds the dataset straight into a fresh store (through the store's own batch writer), starts
the API in-process with a real HTTP server on 127.0.0.1, and times pages of 100 samples.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from visor.api import create_app
from visor.config import Settings
from visor.store import Store
from visor.synthetic import SAMPLE_CLASSES as CLASSES
from visor.synthetic import write_samples


def build(home: Path, n: int) -> None:
    store = Store(home / "visor.duckdb")
    write_samples(store, n, "big")
    store.close()


def serve(home: Path, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """The API over the store in `home`, on 127.0.0.1:`port`, in a thread of this process
    (stop it with `server.should_exit = True` and join the thread)."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(home=home)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        build(home, args.samples)
        print(f"built {args.samples:,} samples in {time.perf_counter() - t0:.1f} s")
        server, thread = serve(home, 8765)
        rng = np.random.default_rng(1)
        with httpx.Client(base_url="http://127.0.0.1:8765") as client:
            for label, extra in (
                ("class filter", {}),
                ("class filter, sort by filename", {"sort": "filename"}),
            ):
                times = []
                for _ in range(args.queries):
                    params = {
                        "class": CLASSES[int(rng.integers(0, 80))],
                        "limit": 100,
                        "offset": int(rng.integers(0, 1000)) * 10,
                        **extra,
                    }
                    start = time.perf_counter()
                    r = client.get("/api/datasets/big/samples", params=params)
                    times.append((time.perf_counter() - start) * 1000)
                    assert r.status_code == 200 and len(r.json()["items"]) == 100
                times.sort()
                print(
                    f"{label}: p50 {statistics.median(times):.1f} ms, "
                    f"p99 {times[int(len(times) * 0.99) - 1]:.1f} ms over {len(times)} pages"
                )
        server.should_exit = True
        thread.join()


if __name__ == "__main__":
    main()
