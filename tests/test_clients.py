"""One workspace, many clients: while `visor serve` runs, the CLI and `visor.open()` work
through it (real processes, real sockets), and without it they open the store directly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from conftest import Server, free_port, run_cli, wait_job
from playwright.sync_api import Browser, expect

import visor
from visor.client import RemoteWorkspace, find_server
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"
DATA = Path(__file__).parent / "data"


def cli(home: Path, *args: str) -> str:
    done = run_cli(home, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def test_cli_commands_work_through_a_running_server(tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        record = json.loads((home / "server.json").read_text())
        assert record["url"] == server.url and record["pid"] == server.proc.pid  # type: ignore[union-attr]
        assert (home / "server.json").stat().st_mode & 0o777 == 0o600
        out = cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "trees")
        assert "ingested trees: 7 samples, 101 labels (yolo)" in out
        out = cli(home, "embed", "trees", "--model", TINY, "--precision", "fp32")
        assert "embedded 7 images with random:dinov2-tiny (64-d, cpu, fp32)" in out
        assert "map 1: pca of 7 points" in cli(home, "map", "trees", "--method", "pca")
        assert "random weights" in cli(home, "similar", "trees", "0", "-k", "3")
        assert "nearest-neighbour similarity of 7 samples" in cli(home, "duplicates", "trees")
        served_info = cli(home, "info", "trees")
        assert "trees" in cli(home, "datasets")
        coco = cli(home, "ingest", str(demo_root), "--name", "shapes")
        assert "ingested shapes: 40 samples" in coco
        preds = tmp_path / "preds.json"
        preds.write_text(
            json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}])
        )
        assert (
            run_cli(home, "import-predictions", "shapes", str(preds), "--source", "m1").returncode
            == 0
        )
        assert "deleted shapes" in cli(home, "rm", "shapes")
        # What the clients did is what the server shows.
        api = httpx.Client(headers=server.headers, base_url=server.url)
        assert [d["name"] for d in api.get("/api/datasets").json()] == ["trees"]
        assert api.get("/api/datasets/trees/embeddings/status").json()["models"][0]["vectors"] == 7
        assert len(api.get("/api/datasets/trees/maps").json()) == 1
    finally:
        server.stop()
    assert not (home / "server.json").exists()
    # The same command without a server prints the same.
    assert cli(home, "info", "trees") == served_info


def test_visor_open_is_a_client_of_the_running_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        ws = visor.open(home)
        assert isinstance(ws, RemoteWorkspace)
        job = ws.jobs.wait(ws.ingest(str(DATA / "labelimg_trees"), "trees")["id"])
        assert job["state"] == "done"
        ds = ws.dataset("trees")
        assert ds.embed(TINY, precision="fp32", wait=True)["state"] == "done"
        total, items = ds.samples(limit=10)
        assert total == 4 and len(items) == 4
        # The same filters as the direct mode: a class, and ids (sent in a body).
        assert ds.samples(visor.SampleFilter(category="Dead"))[0] == 1
        total, items = ds.samples(visor.SampleFilter(ids=[3, 1]), sort="filename", descending=True)
        names = [s["filename"] for s in items]
        assert total == 2 and {s["id"] for s in items} == {1, 3}
        assert names == sorted(names, reverse=True)
        assert ds.add_tags([0, 1], ["look"]) == 2
        ids, vectors = ds.embeddings()
        assert ids.tolist() == [0, 1, 2, 3] and vectors.shape == (4, 64)
        ws.close()
    finally:
        server.stop()
    with visor.open(home) as direct:
        assert isinstance(direct, Workspace)
        same_ids, same = direct.dataset("trees").embeddings(TINY)
        assert (same_ids == ids).all() and np.array_equal(same, vectors)
        assert direct.dataset("trees").info()["tags"] == {"look": 2}


def test_two_clients_and_the_same_job(tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        cli(home, "ingest", str(demo_root), "--name", "a")
        cli(home, "ingest", str(DATA / "classification_trees"), "--name", "b")
        env = {**os.environ, "VISOR_HOME": str(home)}
        args = ["--model", TINY, "--precision", "fp32", "--batch-size", "4"]
        both = [
            subprocess.Popen(
                [sys.executable, "-m", "visor", "embed", name, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        outs = [p.communicate(timeout=300) for p in both]
        assert [p.returncode for p in both] == [0, 0], outs
        assert "embedded 40 images" in outs[0][0] and "embedded 98 images" in outs[1][0]
        ws = visor.open(home)
        first = ws.dataset("a").embed(TINY, precision="fp32", batch_size=1, recompute=True)
        again = ws.dataset("a").embed(TINY, precision="fp32", batch_size=1, recompute=True)
        assert again["id"] == first["id"]
        assert ws.jobs.wait(first["id"])["state"] == "done"
        ws.close()
    finally:
        server.stop()


def test_ctrl_c_on_a_client_cancels_its_job_on_the_server(tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        cli(home, "ingest", str(demo_root), "--name", "a")
        client = _slow_embed(home)
        api = httpx.Client(headers=server.headers, base_url=server.url)
        job = _running(api, "embed")
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=120)
        assert client.returncode == 130, err
        assert wait_job(api, job["id"])["state"] == "cancelled"
    finally:
        server.stop()


def test_a_killed_server_leaves_clients_a_clear_message(tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    cli(home, "ingest", str(demo_root), "--name", "a")
    client = _slow_embed(home)
    job = _running(httpx.Client(headers=server.headers, base_url=server.url), "embed")
    server.kill()
    _, err = client.communicate(timeout=120)
    assert client.returncode == 1
    assert f"the Visor server at {server.url} stopped answering" in err
    assert "Traceback" not in err
    # Its record is stale now: a new client opens the store directly.
    assert (home / "server.json").exists() and find_server(home) is None
    assert "a (coco" in cli(home, "info", "a")
    with Workspace(visor.config.Settings(home=home)) as ws:
        assert ws.jobs.get(job["id"])["state"] == "interrupted"


def _slow_embed(home: Path) -> subprocess.Popen[str]:
    """`visor embed a` in its own process, slow enough to be caught running: batches of 1 on
    the base model (a few seconds with the small one, which a fast moment of a machine could
    finish between the test seeing it run and the client's cancel reaching the server)."""
    args = [
        "embed",
        "a",
        "--model",
        "random:dinov2-base",
        "--precision",
        "fp32",
        "--batch-size",
        "1",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "visor", *args],
        env={**os.environ, "VISOR_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _running(api: httpx.Client, kind: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = [
            j for j in api.get("/api/jobs", params={"kind": kind}).json() if j["state"] == "running"
        ]
        if jobs and jobs[0]["done"] > 0:
            return jobs[0]
        time.sleep(0.05)
    raise TimeoutError(kind)


def test_launch_starts_a_server_or_finds_the_running_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = visor.launch(port=free_port(), home=home)
    try:
        assert httpx.get(f"{url}/api/health").status_code == 200
        assert visor.launch(home=home) == url  # the running one, not a second
        assert f'href="{url}"' in url._repr_html_()
        assert isinstance(visor.open(home), RemoteWorkspace)
    finally:
        info = find_server(home)
        assert info is not None
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while (home / "server.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not (home / "server.json").exists()


def test_changes_need_the_token_the_servers_origin_and_a_loopback_host(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    try:
        body = {"name": "x", "path": str(DATA / "voc_trees")}
        plain = httpx.Client(base_url=server.url)
        refused = plain.post("/api/ingest", json=body)
        assert refused.status_code == 403 and "token" in refused.json()["error"]["message"]
        wrong = plain.post("/api/ingest", json=body, headers={"X-Visor-Token": "guess"})
        assert wrong.status_code == 403
        foreign = plain.post(
            "/api/ingest", json=body, headers={**server.headers, "Origin": "https://evil.test"}
        )
        assert foreign.status_code == 403 and "another site" in foreign.json()["error"]["message"]
        rebound = plain.get("/api/datasets", headers={"Host": "evil.test"})
        assert rebound.status_code == 403 and "evil.test" in rebound.json()["error"]["message"]
        assert plain.get("/api/datasets").json() == []  # reading from here is fine
        page = plain.get("/")
        cookie = page.headers["set-cookie"]
        assert "visor_token=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        # The UI's own requests: same origin, the cookie from its page.
        same = httpx.post(
            f"{server.url}/api/ingest",
            json=body,
            headers={"Origin": server.url},
            cookies={"visor_token": page.cookies["visor_token"]},
        )
        assert same.status_code == 202, same.text
    finally:
        server.stop()


def test_binding_beyond_loopback_needs_a_flag(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "home", "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 1
    assert "--host 0.0.0.0 would serve other machines: add --allow-remote" in done.stderr


def test_the_ui_follows_what_the_cli_does_without_a_reload(
    browser: Browser, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    server = Server(home).start()
    page = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US").new_page()
    try:
        page.goto(server.url + "/")
        expect(page.get_by_role("link", name="trees")).to_have_count(0)
        cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "trees")
        expect(page.get_by_role("link", name="trees")).to_be_visible(timeout=1000)
        row = page.locator("tr", has_text="trees")
        expect(row.get_by_test_id("embeddings")).to_have_text("none")
        cli(home, "embed", "trees", "--model", TINY, "--precision", "fp32")
        expect(row.get_by_test_id("embeddings")).not_to_have_text("none", timeout=2000)
        page.get_by_role("link", name="trees").click()
        expect(page.get_by_text("No map yet")).to_be_visible()
        cli(home, "map", "trees", "--method", "pca")
        expect(page.get_by_test_id("map")).to_have_attribute("data-points", "7", timeout=2000)
    finally:
        page.context.close()
        server.stop()
