"""The HTTP API, against `visor serve` running on 127.0.0.1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import numpy as np
from conftest import Server, wait_job, write_image


def _ingest(client: httpx.Client, root: Path, name: str = "shapes") -> dict:
    r = client.post("/api/ingest", json={"name": name, "path": str(root)})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done", job
    return job


def test_health_and_docs(server: Server) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        assert c.get("/api/health").json()["status"] == "ok"
        assert c.get("/docs").status_code == 200
        assert "/api/datasets/{name}/samples" in c.get("/openapi.json").json()["paths"]


def test_web_ui_is_served_at_root(server: Server) -> None:
    """`make setup` builds frontend/ into the package; the server serves it and its assets."""
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and '<div id="root">' in page.text, page.text[:300]
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', page.text)
    assert scripts
    asset = httpx.get(server.url + scripts[0])
    assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
    assert httpx.get(server.url + "/api/health").json()["status"] == "ok"


def test_inspect_says_what_an_ingest_would_find(
    server: Server, demo_root: Path, tmp_path: Path
) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        found = c.get("/api/inspect", params={"path": str(demo_root)}).json()
        assert found["format"] == "coco" and found["images"] == 40
        missing = c.get("/api/inspect", params={"path": str(tmp_path / "nope")})
        assert missing.status_code == 422 and "nope" in missing.json()["error"]["message"]
        (tmp_path / "empty").mkdir()
        empty = c.get("/api/inspect", params={"path": str(tmp_path / "empty")})
        assert empty.status_code == 422 and "no images" in empty.json()["error"]["message"]
        assert c.get("/api/datasets").json() == []  # nothing was ingested


def test_ingest_list_page_filter_and_sort(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, demo_root)
        (listed,) = c.get("/api/datasets").json()
        assert listed["name"] == "shapes" and listed["maps"] == 0 and listed["vectors"] == {}
        assert sum(listed["splits"].values()) == 40 and set(listed["splits"]) == {"train", "val"}
        page = c.get("/api/datasets/shapes/samples", params={"limit": 5, "offset": 5}).json()
        assert page["total"] == 40 and [s["id"] for s in page["items"]] == [5, 6, 7, 8, 9]
        val = c.get("/api/datasets/shapes/samples", params={"split": "val", "limit": 1000}).json()
        assert val["total"] == len(val["items"]) > 0
        assert all(s["split"] == "val" for s in val["items"])
        circles = c.get(
            "/api/datasets/shapes/samples", params={"class": "circle", "limit": 1000}
        ).json()
        assert circles["total"] > 0 and all("circle" in s["classes"] for s in circles["items"])
        by_size = c.get(
            "/api/datasets/shapes/samples",
            params={"sort": "size_bytes", "order": "desc", "limit": 1000},
        ).json()["items"]
        sizes = [s["size_bytes"] for s in by_size]
        assert sizes == sorted(sizes, reverse=True)
        named = c.get("/api/datasets/shapes/samples", params={"filename": "000003"}).json()
        assert [s["filename"] for s in named["items"]] == ["000003.jpg"]
        info = c.get("/api/datasets/shapes").json()
        assert sum(info["splits"].values()) == 40


def test_sample_image_thumbnail_and_etag(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, demo_root)
        sample = c.get("/api/datasets/shapes/samples/3").json()
        assert sample["labels"] and all(len(lab["bbox"]) == 4 for lab in sample["labels"])
        image = c.get("/api/datasets/shapes/samples/3/image")
        assert image.headers["content-type"] == "image/jpeg"
        assert image.content == (demo_root / sample["path"]).read_bytes()
        thumb = c.get("/api/datasets/shapes/samples/3/thumbnail")
        assert thumb.status_code == 200 and "max-age" in thumb.headers["cache-control"]
        again = c.get(
            "/api/datasets/shapes/samples/3/thumbnail",
            headers={"If-None-Match": thumb.headers["etag"]},
        )
        assert again.status_code == 304


def test_tags_are_added_filtered_and_removed(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, demo_root)
        r = c.post("/api/datasets/shapes/tag", json={"ids": [1, 2, 3], "tags": ["review"]})
        assert r.json() == 3
        tagged = c.get("/api/datasets/shapes/samples", params={"tag": "review"}).json()
        assert [s["id"] for s in tagged["items"]] == [1, 2, 3]
        untag = c.post("/api/datasets/shapes/untag", json={"ids": [2], "tags": ["review"]})
        # Each quick operation's answer says the change count once it was done (the page
        # passes over the events its own fetch already covers).
        assert int(untag.headers["X-Visor-Seq"]) == int(r.headers["X-Visor-Seq"]) + 1
        tagged = c.get("/api/datasets/shapes/samples", params={"tag": "review"}).json()
        assert [s["id"] for s in tagged["items"]] == [1, 3]
        r = c.post("/api/datasets/shapes/tag", json={"ids": [99999], "tags": ["x"]})
        assert r.status_code == 404


def test_a_selection_is_posted_once_then_filters_pages_ids_and_tags(
    server: Server, demo_root: Path
) -> None:
    chosen = np.array([3, 7, 8, 21, 39], dtype="<i4")
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, demo_root)
        base = "/api/datasets/shapes"
        r = c.post(
            f"{base}/selections",
            content=chosen.tobytes(),
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 201 and r.json()["count"] == 5
        token = r.json()["selection"]
        page = c.get(f"{base}/samples", params={"selection": token, "limit": 3}).json()
        assert page["total"] == 5 and [s["id"] for s in page["items"]] == [3, 7, 8]
        # Posted with filters, it also says how many of its samples match them.
        again = c.post(
            f"{base}/selections",
            params={"split": "val"},
            content=chosen.tobytes(),
            headers={"content-type": "application/octet-stream"},
        ).json()
        val_total = c.get(f"{base}/samples", params={"selection": token, "split": "val"}).json()
        assert again["count"] == 5 and again["matching"] == val_total["total"]
        # With another filter on top: the selection's val samples, by the binary id list.
        val = c.get(f"{base}/samples/ids", params={"split": "val"})
        val_ids = set(np.frombuffer(val.content, dtype="<i4").tolist())
        assert int(val.headers["x-total-count"]) == len(val_ids) > 0
        both = c.get(f"{base}/samples/ids", params={"split": "val", "selection": token})
        assert set(np.frombuffer(both.content, "<i4").tolist()) == val_ids & set(chosen.tolist())
        # Tags on the whole selection, without sending its ids again.
        r = c.post(f"{base}/tag", json={"selection": token, "tags": ["lasso"]})
        assert r.json() == 5
        tagged = c.get(f"{base}/samples/ids", params={"tag": "lasso"}).content
        assert np.frombuffer(tagged, "<i4").tolist() == chosen.tolist()
        # JSON works too; unknown ids and unknown tokens are refused by name.
        r = c.post(f"{base}/selections", json={"ids": [1, 2]})
        assert r.status_code == 201 and r.json()["count"] == 2
        r = c.post(f"{base}/selections", json={"ids": [1, 4000]})
        assert r.status_code == 404 and "4000" in r.json()["error"]["message"]
        r = c.get(f"{base}/samples", params={"selection": "nope"})
        assert r.status_code == 404 and "selection 'nope' not found" in r.json()["error"]["message"]
        r = c.post(f"{base}/tag", json={"ids": [1], "selection": token, "tags": ["x"]})
        assert r.status_code == 422


def test_pages_can_carry_each_samples_boxes(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, demo_root)
        coco = json.loads((demo_root / "annotations" / "instances_train.json").read_text())
        page = c.get(
            "/api/datasets/shapes/samples", params={"boxes": "all", "limit": 1000, "split": "train"}
        ).json()
        by_coco_id = {s["metadata"]["coco_id"]: s for s in page["items"]}
        for image in coco["images"]:
            expected = sorted(
                a["bbox"] for a in coco["annotations"] if a["image_id"] == image["id"]
            )
            got = sorted(b["bbox"] for b in by_coco_id[image["id"]]["boxes"])
            assert got == [[float(v) for v in box] for box in expected]
        assert all(b["kind"] == "gt" for s in page["items"] for b in s["boxes"])
        none = c.get("/api/datasets/shapes/samples", params={"boxes": "prediction"}).json()
        assert all(s["boxes"] == [] for s in none["items"])
        assert "boxes" not in c.get("/api/datasets/shapes/samples").json()["items"][0]


def test_errors_are_json_with_the_right_status(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        r = c.get("/api/datasets/nope/samples")
        assert r.status_code == 404
        assert r.json() == {"error": {"code": "not_found", "message": "dataset 'nope' not found"}}
        assert (
            c.post("/api/ingest", json={"name": "a b", "path": str(demo_root)}).status_code == 422
        )
        assert c.post("/api/ingest", json={"name": "a/b", "path": str(demo_root)}).status_code in (
            404,
            422,
        )
        _ingest(c, demo_root)
        r = c.post("/api/ingest", json={"name": "shapes", "path": str(demo_root)})
        assert r.status_code == 409 and "already exists" in r.json()["error"]["message"]
        assert c.get("/api/datasets/shapes/samples/123456").status_code == 404
        r = c.get("/api/datasets/shapes/samples", params={"sort": "bogus"})
        assert r.status_code == 422 and "bogus" in r.json()["error"]["message"]
        assert c.get("/api/datasets/shapes/samples", params={"limit": 0}).status_code == 422
        r = c.get("/api/datasets/..%2F..%2Fetc/samples")
        assert r.status_code == 404 and "error" in r.json()
        r = c.post("/api/ingest", json={"name": "x", "path": "/no/such/place"})
        assert r.status_code == 422 and "/no/such/place" in r.json()["error"]["message"]


def test_job_events_stream_until_the_job_ends(server: Server, demo_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url, timeout=60) as c:
        job = c.post("/api/ingest", json={"name": "s", "path": str(demo_root)}).json()
        events = []
        with c.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            name = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    events.append((name, json.loads(line.split(":", 1)[1])))
        assert events[-1][0] == "end" and events[-1][1]["state"] == "done"
        assert all(e[0] == "progress" for e in events[:-1])
        assert c.get("/api/jobs").json()[0]["id"] == job["id"]


def test_an_event_stream_opened_as_the_server_stops_asks_to_come_back(
    tmp_path: Path, monkeypatch
) -> None:
    """A page's event stream that reconnects while the server shuts down gets a `retry`, not
    an HTTP 500 (the page would log it as an error, and its browser stop reconnecting). The
    app is called in this process, with uvicorn's stop signal set as sse-starlette records
    it."""
    from sse_starlette.sse import AppStatus
    from starlette.testclient import TestClient

    from visor.api.app import create_app
    from visor.config import Settings

    app = create_app(Settings(home=tmp_path / "home"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        monkeypatch.setattr(AppStatus, "should_exit", True)
        r = client.get("/api/events")
        assert (r.status_code, r.text) == (200, "retry: 2000\n\n")
        assert r.headers["content-type"].startswith("text/event-stream")


def test_delete_dataset(server: Server, tmp_path: Path) -> None:
    write_image(tmp_path / "d" / "a.jpg")
    with httpx.Client(headers=server.headers, base_url=server.url) as c:
        _ingest(c, tmp_path / "d", "gone")
        assert c.post("/api/datasets/gone/delete").status_code == 200
        assert c.get("/api/datasets/gone").status_code == 404


def test_root_explains_how_to_build_the_ui_when_missing(tmp_path: Path) -> None:
    empty = tmp_path / "no-ui"
    empty.mkdir()
    server = Server(tmp_path / "home", env={"VISOR_UI_DIR": str(empty)}).start()
    try:
        r = httpx.get(server.url + "/")
        assert r.status_code == 200
        assert "has not been built" in r.text and "make setup" in r.text and "/docs" in r.text
    finally:
        server.stop()
