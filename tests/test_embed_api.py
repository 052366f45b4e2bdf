"""Embedding over HTTP and the command line: the job, its SSE progress, status, a server
killed mid-job, and a model whose weights are not there."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from pathlib import Path

import httpx
import pytest
from conftest import Server, free_port, wait_job
from conftest import run_cli as run

from visor.config import Settings
from visor.workspace import Workspace

SMALL = "random:dinov2-small"
TINY = "random:dinov2-tiny"


def _ingest(client: httpx.Client, root: Path, name: str = "shapes") -> None:
    r = client.post("/api/ingest", json={"name": name, "path": str(root)})
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["id"])["state"] == "done"


def _events(client: httpx.Client, url: str) -> list[tuple[str, dict, float]]:
    events = []
    with client.stream("GET", url) as stream:
        assert stream.status_code == 200
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1]), time.monotonic()))
    return events


def test_generate_streams_progress_and_reports_status(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url, timeout=120) as c:
        _ingest(c, demo_root)
        # Precision is pinned: `auto` picks bf16 on CPUs that have it (tested on its own).
        body = {"model": SMALL, "batch_size": 4, "device": "cpu", "precision": "fp32"}
        r = c.post("/api/datasets/shapes/embed", json=body)
        assert r.status_code == 202, r.text
        job = r.json()
        again = c.post("/api/datasets/shapes/embed", json=body)
        assert again.status_code == 202 and again.json()["id"] == job["id"]

        events = _events(c, "/api/datasets/shapes/embeddings/progress")
        names = [e[0] for e in events]
        assert names[-1] == "end" and set(names[:-1]) == {"progress"}
        running = [e for e in events if e[1]["state"] == "running" and e[1]["total"]]
        assert len(running) >= 2
        for _, data, _ in events:
            assert {"done", "total", "rate", "eta", "state", "message"} <= set(data)
        gaps = [b[2] - a[2] for a, b in itertools.pairwise(events)]
        # sent every 0.25 s; the median, since a loaded 2-core machine can delay one
        assert statistics.median(gaps) < 0.5
        dones = [e[1]["done"] for e in running]
        assert dones == sorted(dones) and any(e[1]["rate"] for e in running)
        final = events[-1][1]
        assert final["state"] == "done" and final["done"] == final["total"] == 40

        status = c.get("/api/datasets/shapes/embeddings/status").json()
        (row,) = status["models"]
        assert row["model"] == SMALL and row["dim"] == 384
        assert row["vectors"] == row["samples"] == 40 and row["complete"] and row["errors"] == 0
        assert row["last_job"]["id"] == job["id"]
        assert c.get("/api/datasets/shapes/embeddings/errors", params={"model": SMALL}).json() == []
        models = c.get("/api/models").json()
        loaded = {"model": SMALL, "device": "cpu", "precision": "fp32", "backend": "torch"}
        assert loaded in models["loaded"]


def test_bad_requests_get_clear_errors(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url, timeout=60) as c:
        r = c.post("/api/datasets/nope/embed", json={})
        assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
        _ingest(c, demo_root)
        for body, words in [
            ({"model": "dinov2-huge"}, "not a known model"),
            ({"model": TINY, "batch_size": 0}, "batch_size: Input should be greater than or equal"),
            ({"model": TINY, "device": "cuda"}, "CUDA is not available"),
            ({"model": TINY, "precision": "fp8"}, "precision 'fp8'"),
        ]:
            r = c.post("/api/datasets/shapes/embed", json=body)
            assert r.status_code == 422, (body, r.text)
            assert words in r.json()["error"]["message"]
        r = c.get("/api/datasets/shapes/embeddings/progress")
        assert r.status_code == 404 and "no embed job" in r.json()["error"]["message"]


def test_killed_server_leaves_an_interrupted_job_that_resumes(
    server_home: Path, demo_root: Path
) -> None:
    first = Server(server_home).start()
    try:
        with httpx.Client(headers=first.headers, base_url=first.url, timeout=60) as c:
            _ingest(c, demo_root)
            body = {"model": SMALL, "batch_size": 4, "workers": 1}
            job = c.post("/api/datasets/shapes/embed", json=body).json()
            deadline = time.monotonic() + 120
            while c.get(f"/api/jobs/{job['id']}").json()["done"] < 8:
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.05)
    finally:
        first.kill()  # SIGKILL: no clean-up of any kind

    second = Server(server_home).start()
    try:
        with httpx.Client(headers=second.headers, base_url=second.url, timeout=120) as c:
            assert c.get(f"/api/jobs/{job['id']}").json()["state"] == "interrupted"
            (row,) = c.get("/api/datasets/shapes/embeddings/status").json()["models"]
            kept = row["vectors"]
            assert 8 <= kept < 40 and kept % 4 == 0 and not row["complete"]
            resumed = c.post("/api/datasets/shapes/embed", json=body).json()
            assert resumed["id"] != job["id"]
            result = wait_job(c, resumed["id"])["result"]
            assert result["embedded"] == 40 - kept and result["skipped_existing"] == kept
    finally:
        second.stop()
    with Workspace(Settings(home=server_home)) as ws:
        ids, vectors = ws.dataset("shapes").embeddings(SMALL)
        assert ids.tolist() == list(range(40)) and vectors.shape == (40, 384)


def test_cli_embed_reports_and_info_shows_vectors(tmp_path: Path, demo_root: Path) -> None:
    assert run(tmp_path, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    r = run(
        tmp_path, "embed", "shapes", "--model", TINY, "--batch-size", "16", "--precision", "fp32"
    )
    assert r.returncode == 0, r.stderr
    assert "embedded 40 images with random:dinov2-tiny (64-d, cpu, fp32)" in r.stdout
    r = run(tmp_path, "embed", "shapes", "--model", TINY)
    assert "nothing to embed: all 40 images have vectors from random:dinov2-tiny" in r.stdout
    info = run(tmp_path, "info", "shapes").stdout
    assert "random:dinov2-tiny" in info and "40/40" in info
    assert "dinov2-base" in run(tmp_path, "models").stdout


def test_missing_weights_fail_fast_with_a_fix(tmp_path: Path, demo_root: Path) -> None:
    assert run(tmp_path, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    # An empty Hugging Face cache and a hub that refuses connections.
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    started = time.monotonic()
    r = run(tmp_path, "embed", "shapes", "--model", "dinov2-base", env=env)
    assert time.monotonic() - started < 60  # seconds of imports, no network wait
    assert r.returncode == 1
    assert "weights for facebook/dinov2-base are not in the local Hugging Face cache" in r.stderr
    assert "--model /path/to/dinov2-base" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    r = run(tmp_path, "embed", "shapes", "--model", str(tmp_path / "no-such-folder"))
    assert r.returncode == 1 and "not a known model" in r.stderr


def test_serve_can_preload_the_model(server_home: Path) -> None:
    srv = Server(server_home).start("--preload-model", "--model", TINY)
    try:
        loaded = httpx.get(f"{srv.url}/api/models").json()["loaded"]
        assert [m["model"] for m in loaded] == [TINY]
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("flags", "precision"),
    [
        ("fpu sse2 avx2 fma", "fp32"),
        ("avx2 avx512f avx512_bf16", "bf16"),
        ("avx2 amx_bf16 amx_tile", "bf16"),
    ],
)
def test_auto_precision_follows_the_cpu_flags(
    tmp_path: Path, demo_root: Path, flags: str, precision: str
) -> None:
    """The CPU is injected (VISOR_CPU_FLAGS), so each branch runs on any machine."""
    assert run(tmp_path, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    r = run(
        tmp_path,
        "embed",
        "shapes",
        "--model",
        TINY,
        "--device",
        "cpu",
        env={"VISOR_CPU_FLAGS": flags},
    )
    assert r.returncode == 0, r.stderr
    assert f"embedded 40 images with random:dinov2-tiny (64-d, cpu, {precision})" in r.stdout
