"""The map in a real browser (Debian's Chromium driven by Playwright) against a real `visor
serve`: lasso, colours, fit, the sample view's neighbours, text search and clusters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import draw_lasso, inside
from conftest import Server, run_cli, wait_job
from playwright.sync_api import Page, expect

from visor.store import Store
from visor.synthetic import write_map, write_samples


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory, demo_root: Path) -> Iterator[Server]:
    """One embedded and mapped dataset for the module's map tests (they only add to it: a
    tag, a second map)."""
    home = tmp_path_factory.mktemp("mapped") / "home"
    for args in (
        ("ingest", str(demo_root), "--name", "shapes"),
        ("embed", "shapes", "--model", "random:dinov2-small"),
        ("map", "shapes", "--model", "random:dinov2-small", "--method", "pca"),
    ):
        done = run_cli(home, *args)
        assert done.returncode == 0, done.stderr
    server = Server(home, env={"VISOR_MODEL": "random:dinov2-small"}).start()
    yield server
    server.stop()


def _ids(server: Server, **filters: str) -> set[int]:
    found = httpx.get(
        server.url + "/api/datasets/shapes/samples", params={**filters, "limit": 100}
    ).json()
    return {s["id"] for s in found["items"]}


def test_lasso_on_the_map_filters_the_grid(page: Page, mapped: Server) -> None:
    import pyarrow as pa

    page.goto(mapped.url + "/?dataset=shapes")
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
    expect(page.get_by_test_id("count")).to_have_text("40 samples")
    canvas = page.get_by_test_id("map").locator("canvas")
    box = canvas.bounding_box()
    assert box is not None
    cx, cy, w, h = (
        box["x"] + box["width"] / 2,
        box["y"] + box["height"] / 2,
        box["width"],
        box["height"],
    )
    # A lasso over the left half of the plot, drawn with Shift held.
    corners = [
        (cx - w * 0.45, cy - h * 0.45),
        (cx, cy - h * 0.45),
        (cx, cy + h * 0.45),
        (cx - w * 0.45, cy + h * 0.45),
    ]
    polygon = draw_lasso(page, corners)
    # The samples inside the polygon, by the points API's coordinates.
    data = httpx.get(mapped.url + "/api/datasets/shapes/maps/default/points").content
    table = pa.ipc.open_stream(data).read_all()
    expected = {
        int(i)
        for i, x, y in zip(
            *(table.column(c).to_pylist() for c in ("sample_id", "x", "y")), strict=True
        )
        if inside(x, y, polygon)
    }
    assert 0 < len(expected) < 40
    expect(page.get_by_test_id("count")).to_have_text(f"{len(expected)} samples")
    shown = page.get_by_test_id("grid").locator("img")
    expect(shown).to_have_count(len(expected))
    ids = {
        int(re.search(r"/samples/(\d+)/", s or "").group(1))
        for s in shown.evaluate_all("els => els.map(e => e.getAttribute('src'))")  # type: ignore[union-attr]
    }
    assert ids == expected
    # The whole lasso can be tagged at once (its ids are not sent again: a selection token).
    # The map's points are fetched again once: on the tag's answer, not again on its event.
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/points" in r.url else None)
    page.get_by_label("tag", exact=True).fill("lassoed")
    page.get_by_test_id("tagbar").get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("tag-note")).to_have_text(f"tagged {len(expected)} samples: lassoed")
    page.wait_for_timeout(1000)  # the tag's change event, sent within 0.25 s
    assert len(fetched) == 1, fetched
    tagged = httpx.get(
        mapped.url + "/api/datasets/shapes/samples", params={"tag": "lassoed", "limit": 100}
    ).json()
    assert {s["id"] for s in tagged["items"]} == expected
    # Under a filter the grid shows the lasso's samples of one split, the rest fade on the map:
    # the tag bar acts on those the grid shows, and says how many.
    splits = httpx.get(mapped.url + "/api/datasets/shapes").json()["splits"]
    split = max(splits, key=lambda s: len(expected & _ids(mapped, split=s)))
    kept = expected & _ids(mapped, split=split)
    assert 0 < len(kept) < len(expected)
    page.get_by_label("Split").select_option(split)
    expect(page.get_by_test_id("count")).to_have_text(f"{len(kept)} samples")
    bar = page.get_by_test_id("tagbar")
    expect(bar).to_contain_text(f"Tag all {len(kept)} shown in the lasso")
    bar.get_by_label("tag", exact=True).fill("lassoed-shown")
    bar.get_by_role("button", name="Add").click()
    expect(page.get_by_test_id("tag-note")).to_have_text(
        f"tagged {len(kept)} samples: lassoed-shown"
    )
    assert _ids(mapped, tag="lassoed-shown") == kept
    page.get_by_label("Split").select_option("")
    page.get_by_test_id("clear-selection").click()
    expect(page.get_by_test_id("count")).to_have_text("40 samples")

    # Hovering a point shows its thumbnail. Map -> screen from the view the map shows now (its
    # data-view: the map-space rectangle the canvas spans), read again before each try: a
    # hover the plot missed while it settled (a refit after the panel changed size) is
    # tried again.
    def on_screen(x: float, y: float) -> tuple[float, float]:
        x0, y0, x1, y1 = json.loads(page.get_by_test_id("map").get_attribute("data-view") or "")
        at = canvas.bounding_box()
        assert at is not None
        return (
            at["x"] + (x - x0) / (x1 - x0) * at["width"],
            at["y"] + (y1 - y) / (y1 - y0) * at["height"],
        )

    points = list(zip(*(table.column(c).to_pylist() for c in ("sample_id", "x", "y")), strict=True))
    target = next(p for p in points if p[0] in expected)
    hover = page.get_by_test_id("hover")
    for _ in range(5):
        sx, sy = on_screen(target[1], target[2])
        page.mouse.move(sx - 30, sy - 30)
        page.mouse.move(sx, sy, steps=5)
        try:
            expect(hover).to_be_visible(timeout=3000)
            break
        except AssertionError:
            continue
    expect(hover).to_be_visible()
    shown_id = int(hover.get_attribute("data-id") or -1)
    near = {i for i, x, y in points if _distance(on_screen(x, y), (sx, sy)) < 8}
    assert shown_id in near
    assert f"/samples/{shown_id}/thumbnail" in (hover.get_attribute("src") or "")
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    expect(hover).to_have_count(0)

    # A change made elsewhere (a tag over HTTP) recolours the map on the same plot: it stays
    # drawn, at the zoom the user chose, rather than made anew and fitted again.
    view = page.get_by_test_id("map")
    fitted = view.get_attribute("data-view") or ""
    for _ in range(3):  # a turn of the wheel while the plot redraws (a busy machine) is lost:
        page.mouse.move(cx, cy)  # turned again, as a user would
        page.mouse.wheel(0, -400)
        try:
            expect(view).not_to_have_attribute("data-view", fitted, timeout=5000)
            break
        except AssertionError:
            continue
    expect(view).not_to_have_attribute("data-view", fitted)
    page.wait_for_timeout(300)  # the zoom's last frames
    zoomed = view.get_attribute("data-view")
    drawn = int(view.get_attribute("data-drawn") or 0)
    httpx.post(
        mapped.url + "/api/datasets/shapes/tag",
        json={"ids": [target[0]], "tags": ["seen"]},
        headers=mapped.headers,
    ).raise_for_status()
    page.wait_for_function(f"document.querySelector('[data-testid=map]').dataset.drawn > {drawn}")
    page.wait_for_timeout(300)
    assert view.get_attribute("data-view") == zoomed
    assert page.evaluate(COLOURS) > 2  # points in their colours, not an empty canvas


# How many colours the map's canvas shows (an empty plot: one, its background).
COLOURS = """() => {
  const c = document.querySelector('[data-testid=map] canvas');
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4) {
    seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  return seen.size;
}"""


def test_embed_and_map_from_the_ui(page: Page, tmp_path: Path, demo_root: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "ingest", str(demo_root), "--name", "shapes").returncode == 0
    server = Server(home, env={"VISOR_MODEL": "random:dinov2-small"}).start()
    try:
        page.goto(server.url + "/?dataset=shapes")
        page.get_by_role("button", name="Embed and map").click()
        progress = page.get_by_role("progressbar")
        expect(progress).to_contain_text("embed ", timeout=30_000)
        expect(progress).to_contain_text("map ", timeout=120_000)  # embed done, map started
        expect(progress).to_contain_text("map done: 100%", timeout=240_000)
        expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
        expect(page.get_by_test_id("map").locator("canvas")).to_be_visible()
    finally:
        page.goto("about:blank")  # the page's event stream closed before its server
        server.stop()


def test_sample_view_boxes_neighbours_keys_and_reload(page: Page, mapped: Server) -> None:
    api = httpx.Client(headers=mapped.headers, base_url=mapped.url + "/api/datasets/shapes")
    first, second = (s["id"] for s in api.get("/samples", params={"limit": 2}).json()["items"])
    page.goto(mapped.url + "/?dataset=shapes")
    # A cell opens once its sample has come (a placeholder before that does nothing).
    page.get_by_test_id("grid").locator("figure.cell[data-id]").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_attribute("aria-label", f"sample {first}")
    labels = api.get(f"/samples/{first}").json()["labels"]
    boxes = [label for label in labels if label["bbox"]]
    assert boxes
    expect(dialog.locator("svg rect")).to_have_count(len(boxes))
    expect(dialog.locator("table.labels tbody tr")).to_have_count(len(labels))
    similar = api.get(f"/samples/{first}/similar", params={"k": 12}).json()["neighbours"]
    strip = page.get_by_test_id("neighbours").locator("img")
    expect(strip).to_have_count(12)
    assert [int(i) for i in strip.evaluate_all("els => els.map(e => e.dataset.id)")] == [
        n["sample_id"] for n in similar
    ]
    # Arrow keys step through the grid's order.
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("aria-label", f"sample {second}")
    page.keyboard.press("ArrowLeft")
    expect(dialog).to_have_attribute("aria-label", f"sample {first}")
    # A neighbour opens; the URL holds it, so a reload shows it again.
    target = similar[0]["sample_id"]
    strip.first.click()
    expect(dialog).to_have_attribute("aria-label", f"sample {target}")
    assert f"sample={target}" in page.url
    page.reload()
    expect(page.get_by_role("dialog")).to_have_attribute("aria-label", f"sample {target}")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert "sample=" not in page.url


def test_map_colours_fading_filters_and_switching(page: Page, mapped: Server) -> None:
    api = httpx.Client(headers=mapped.headers, base_url=mapped.url + "/api/datasets/shapes")
    page.goto(mapped.url + "/")  # the datasets page says what has embeddings and a map
    row = page.locator("tr", has_text="shapes")
    expect(row.get_by_test_id("embeddings")).to_have_text("random:dinov2-small: 40")
    expect(row.get_by_test_id("maps")).to_have_text("1")
    page.goto(mapped.url + "/?dataset=shapes")
    the_map = page.get_by_test_id("map")
    expect(the_map).to_have_attribute("data-points", "40")
    legend = page.get_by_test_id("legend")
    page.get_by_label("colour by").select_option("split")
    splits = httpx.get(mapped.url + "/api/datasets/shapes").json()["splits"]
    for name in splits:
        expect(legend).to_contain_text(name)
    assert "color=split" in page.url
    # A sidebar filter fades the points it leaves out: the map counts those it keeps.
    page.get_by_label("Split").select_option("val")
    expect(the_map).to_have_attribute("data-matched", str(splits["val"]))
    expect(legend).to_contain_text(f"{splits['val']} match the filters")
    page.get_by_label("Split").select_option("")
    expect(the_map).to_have_attribute("data-matched", "")
    # Uniqueness (scored by the map job) and duplicate filters narrow the grid like the API.
    page.get_by_label("uniqueness from").fill("0.5")
    page.get_by_label("uniqueness from").press("Enter")
    above = api.get("/samples", params={"uniqueness_min": 0.5}).json()["total"]
    assert 0 < above < 40
    expect(page.get_by_test_id("count")).to_have_text(f"{above} samples")
    expect(the_map).to_have_attribute("data-matched", str(above))
    assert "umin=0.5" in page.url
    page.get_by_label("Duplicates").select_option("yes")
    dups = api.get("/samples", params={"uniqueness_min": 0.5, "has_duplicates": True}).json()
    expect(page.get_by_test_id("count")).to_have_text(f"{dups['total']} samples")
    # A second map: a choice appears; the chosen one is in the URL and survives a reload.
    job = api.post("/map", json={"method": "pca"}).json()
    assert (
        wait_job(httpx.Client(headers=mapped.headers, base_url=mapped.url), job["id"])["state"]
        == "done"
    )
    page.goto(mapped.url + "/?dataset=shapes")
    chooser = page.get_by_label("map", exact=True)
    expect(chooser.locator("option")).to_have_count(2)
    other = next(m["id"] for m in api.get("/maps").json() if not m["is_default"])
    chooser.select_option(str(other))
    assert f"map={other}" in page.url
    page.reload()
    expect(page.get_by_label("map", exact=True)).to_have_value(str(other))
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")


@pytest.mark.page_errors("/thumbnail")  # samples written without image files: no thumbnails
def test_the_map_fits_every_point_after_load_and_resize(page: Page, tmp_path: Path) -> None:
    """A 10K-point map, wide and flat with outliers at its ends: every point is inside the
    plot's frame with a margin, at first and after the window turns tall and narrow."""
    home = tmp_path / "home"
    rng = np.random.default_rng(3)
    xy = np.stack([rng.uniform(-50, 50, 10_000), rng.normal(0, 2, 10_000)], axis=1)
    xy[:4] = [[-80, 0], [80, 0], [0, 9], [0, -9]]
    store = Store(home / "visor.duckdb")
    write_samples(store, len(xy), "big")
    write_map(store, 1, xy)
    store.close()
    server = Server(home).start()
    try:
        page.goto(server.url + "/?dataset=big&boxes=none")
        for width, height in ((1280, 800), (760, 1000)):
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_function(
                "size => { const m = document.querySelector('[data-testid=map]');"
                " return m && Number(m.dataset.drawn) > 0 && m.dataset.view"
                " && m.getBoundingClientRect().width <= size; }",
                arg=width,
            )
            page.wait_for_timeout(300)  # the fit after a resize waits for the next frame
            x0, y0, x1, y1 = json.loads(page.get_by_test_id("map").get_attribute("data-view"))
            margin_x, margin_y = (x1 - x0) * 0.01, (y1 - y0) * 0.01
            assert (xy[:, 0] > x0 + margin_x).all() and (xy[:, 0] < x1 - margin_x).all()
            assert (xy[:, 1] > y0 + margin_y).all() and (xy[:, 1] < y1 - margin_y).all()
            # and the points fill the frame in one direction (not fitted into a corner)
            assert (xy[:, 0].max() - xy[:, 0].min()) / (x1 - x0) > 0.8 or (
                xy[:, 1].max() - xy[:, 1].min()
            ) / (y1 - y0) > 0.8
    finally:
        page.goto("about:blank")  # the page's event stream closed before its server
        server.stop()


def test_text_search_fills_the_grid(page: Page, tmp_path: Path, demo_root: Path) -> None:
    """Type words, pick how many: the grid shows exactly the best matches the API gives, the
    random-weights warning beside the box; clearing shows everything again."""
    home = tmp_path / "home"
    for args in (
        ("ingest", str(demo_root), "--name", "shapes"),
        ("embed", "shapes", "--model", "random:clip-tiny", "--precision", "fp32"),
        ("map", "shapes", "--method", "pca"),
    ):
        done = run_cli(home, *args)
        assert done.returncode == 0, done.stderr
    server = Server(home).start()
    try:
        page.goto(server.url + "/?dataset=shapes&boxes=none")
        expect(page.get_by_test_id("count")).to_have_text("40 samples")
        page.get_by_label("search by text").fill("a red circle")
        page.get_by_label("how many matches").select_option("10")
        page.get_by_role("button", name="Search").click()
        # The server loads the model's text tower (and converts it) on its first words.
        expect(page.get_by_test_id("count")).to_have_text("10 samples", timeout=60_000)
        expect(page.get_by_test_id("search-note")).to_contain_text("random weights")
        answer = httpx.get(
            server.url + "/api/datasets/shapes/similar", params={"text": "a red circle", "k": 10}
        ).json()
        best = {n["sample_id"] for n in answer["neighbours"]}
        cells = page.get_by_test_id("grid").locator("figure[data-id]")
        expect(cells).to_have_count(10)
        assert {int(c.get_attribute("data-id") or -1) for c in cells.all()} == best
        page.get_by_test_id("clear-selection").click()
        expect(page.get_by_test_id("count")).to_have_text("40 samples")
    finally:
        page.goto("about:blank")  # the page's event stream closed before its server
        server.stop()


@pytest.mark.page_errors("/thumbnail")  # made-up samples: their image files don't exist
def test_cluster_labels_on_the_map_filter_the_grid(page: Page, tmp_path: Path) -> None:
    """Find clusters from the map's toolbar: each planted blob outlined and named by its
    class; a click on a name shows its members in the grid, as many as the API counts."""
    home = tmp_path / "home"
    rng = np.random.default_rng(5)
    centres = np.array([[0, 0], [40, 0], [0, 40], [40, 40]], float)
    blob = rng.integers(0, 4, 800)
    xy = centres[blob] + rng.normal(0, 2, (800, 2))
    store = Store(home / "visor.duckdb")
    write_samples(store, 800, "blobs", classes_of=[[f"kind{k}"] for k in blob])
    write_map(store, 1, xy)
    store.close()
    server = Server(home).start()
    try:
        page.goto(server.url + "/?dataset=blobs&boxes=none")
        expect(page.get_by_test_id("count")).to_have_text("800 samples")
        page.get_by_test_id("find-clusters").click()
        labels = page.get_by_test_id("cluster-label")
        expect(labels).to_have_count(4, timeout=60_000)
        names = sorted(labels.all_inner_texts())
        assert names == [f"kind{k} 100%" for k in range(4)], names
        first = labels.filter(has_text="kind2")
        size = int(first.get_attribute("data-size") or 0)
        cluster = first.get_attribute("data-cluster")
        first.click()
        api = httpx.get(
            server.url + f"/api/datasets/blobs/samples?cluster={cluster}&limit=1"
        ).json()
        assert api["total"] == size and 0.9 * (blob == 2).sum() <= size <= (blob == 2).sum()
        expect(page.get_by_test_id("count")).to_have_text(f"{size} samples")
        expect(page.get_by_test_id("map")).to_have_attribute("data-matched", str(size))
        assert f"cluster={cluster}" in page.url
        page.get_by_test_id("clear-cluster").click()
        expect(page.get_by_test_id("count")).to_have_text("800 samples")
    finally:
        page.goto("about:blank")  # the page's event stream closed before its server
        server.stop()


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000), (900, 1000)])
def test_the_layout_fills_the_window_and_nothing_overflows(
    page: Page, mapped: Server, size: tuple[int, int]
) -> None:
    """The grid's columns take its whole width (less than a cell left over), no panel runs
    past the window's edge, and the random-weights banner is said once on the page."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(mapped.url + "/?dataset=shapes")
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
    page.wait_for_selector("[data-testid=grid] figure.cell")
    left, cell = page.evaluate(
        """() => {
            const grid = document.querySelector('[data-testid=grid]');
            const row = grid.querySelector('.grid-row');
            const cells = [...row.querySelectorAll('figure.cell')];
            const used = cells.reduce((sum, c) => sum + c.getBoundingClientRect().width + 8, 0);
            return [grid.clientWidth - used, cells[0].getBoundingClientRect().width + 8];
        }"""
    )
    assert -1 <= left < cell, (left, cell)
    # Rows as tall as a cell's thumbnail and caption: the gap between them is the 8 px one.
    expect(page.locator("[data-testid=grid] figure.cell img").first).to_be_visible()
    gap = page.evaluate(
        """() => {
            const [a, b] = document.querySelectorAll('[data-testid=grid] .grid-row');
            const cell = a.querySelector('figure.cell').getBoundingClientRect();
            return b.querySelector('figure.cell').getBoundingClientRect().top - cell.bottom;
        }"""
    )
    assert 7 <= gap <= 9, gap
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    banners = page.locator(".warning", has_text="random weights")
    expect(banners).to_have_count(1)
    page.screenshot(path=str(Path(mapped.home) / f"layout-{size[0]}x{size[1]}.png"))


def test_the_split_between_grid_and_map_is_dragged_and_remembered(
    page: Page, mapped: Server
) -> None:
    page.goto(mapped.url + "/?dataset=shapes")
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
    panel = page.locator(".map-panel")
    before = panel.bounding_box()
    handle = page.get_by_test_id("splitter").bounding_box()
    assert before is not None and handle is not None
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 150, y, steps=10)
    page.mouse.up()
    after = panel.bounding_box()
    assert after is not None and 130 < after["width"] - before["width"] < 170
    page.reload()
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")
    again = panel.bounding_box()
    assert again is not None and abs(again["width"] - after["width"]) < 3
    # Sidebar groups fold away, and stay folded.
    page.locator("details.section > summary", has_text="Quality and labels").click()
    expect(page.get_by_label("image quality")).to_be_hidden()
    # Remembered once the fold's toggle event has run (a task after the click).
    page.wait_for_function(
        "() => localStorage.getItem('visor:section:Quality and labels') === 'closed'"
    )
    page.reload()
    expect(page.get_by_test_id("map")).to_have_attribute("data-points", "40")  # loaded
    expect(page.get_by_label("image quality")).to_be_hidden()
    page.locator("details.section > summary", has_text="Quality and labels").click()
    expect(page.get_by_label("image quality")).to_be_visible()
