"""Saved views and selections: kept in the store across restarts, used by exports, from
Python, the CLI, HTTP and the UI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import Server, ingest, run_cli
from playwright.sync_api import Browser, expect

from visor.config import Settings
from visor.errors import InvalidInput, NotFound
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"


def test_views_and_selections_survive_a_restart(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    ws = Workspace(settings)
    ingest(ws, DATA / "classification_trees", "trees")
    ds = ws.dataset("trees")
    _, dead = ds.samples(SampleFilter(category="Dead"), limit=100)
    lasso = [s["id"] for s in dead[:10]]
    ds.views.save("dead val", filters=SampleFilter(category="Dead", split="val"), sort="filename")
    ds.views.save("my lasso", filters={"class": "Dead"}, selection=lasso)
    token = ds.select([s["id"] for s in dead[10:13]])["selection"]
    with pytest.raises(InvalidInput, match=r"filters\.colour: Extra inputs are not permitted"):
        ds.views.save("bad", filters={"colour": "red"})
    with pytest.raises(InvalidInput, match="view name"):
        ds.views.save("a/b")
    ws.close()

    ws = Workspace(settings)  # a restart: nothing in memory
    ds = ws.dataset("trees")
    assert [v["name"] for v in ds.views.list()] == ["dead val", "my lasso"]
    view = ds.views.get("dead val")
    assert view["filters"] == {"split": "val", "class": "Dead"} and view["sort"] == "filename"
    total, _ = ds.samples(ds.views.filter("dead val"))
    assert total == len([s for s in dead if s["split"] == "val"])
    total, _ = ds.samples(ds.views.filter("my lasso"))
    assert total == 10
    _, chosen = ds.samples(SampleFilter(selection=token))
    assert sorted(s["id"] for s in chosen) == sorted(s["id"] for s in dead[10:13])
    result = ds.export(str(tmp_path / "out"), "classification", view="my lasso", wait=True)
    assert result["result"]["samples"] == 10
    ds.views.delete("dead val")
    with pytest.raises(NotFound, match="view 'dead val' not found"):
        ds.views.get("dead val")
    ws.close()


def test_views_from_the_cli_http_and_ui(tmp_path: Path, browser: Browser) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(DATA / "yolo_roboflow_trees"), "--name", "y").returncode == 0
    done = run_cli(home, "save-view", "y", "trainset", "--split", "train")
    assert done.returncode == 0 and "view trainset saved" in done.stdout
    listing = run_cli(home, "views", "y").stdout
    assert "trainset" in listing and "split=train" in listing
    done = run_cli(
        home, "export", "y", str(tmp_path / "out"), "--format", "coco", "--view", "trainset"
    )
    assert done.returncode == 0 and "exported 4 samples" in done.stdout
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            made = client.post(
                "/api/datasets/y/save-view", json={"view": "tests", "filters": {"split": "test"}}
            )
            assert made.status_code == 200 and made.json()["filters"] == {"split": "test"}
            assert [v["name"] for v in client.get("/api/datasets/y/views").json()] == [
                "tests",
                "trainset",
            ]
            assert (
                client.post(
                    "/api/datasets/y/save-view", json={"view": "x", "selection": "nope"}
                ).status_code
                == 404
            )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        page = context.new_page()
        page.goto(server.url + "/?dataset=y&split=val&sort=filename")
        expect(page.get_by_test_id("count")).to_have_text("2 samples")
        views = page.get_by_test_id("views")
        views.get_by_label("view name").fill("validation")
        views.get_by_role("button", name="Save view").click()
        expect(views.get_by_test_id("views-note")).to_have_text("saved validation")
        page.goto(server.url + "/?dataset=y")
        expect(page.get_by_test_id("count")).to_have_text("7 samples")
        page.get_by_label("saved view").select_option("validation")
        expect(page.get_by_test_id("count")).to_have_text("2 samples")
        assert "split=val" in page.url and "sort=filename" in page.url
        context.close()
        # The CLI, through the server, sees the view the UI saved.
        assert "validation" in run_cli(home, "views", "y").stdout
        assert "view tests deleted" in run_cli(home, "views", "y", "--delete", "tests").stdout
    finally:
        server.stop()
