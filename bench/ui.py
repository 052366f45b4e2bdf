"""The web UI with a large map, in headless Chromium: time from navigation to the map's first
drawn frame, from the end of a lasso over about half the points to the grid's new count, and
from the answer to tagging that lasso (the tag bar's Add) to the map drawn with the new tags;
first, the server's part of that last one: the points made anew against the kept ones with
their tags read again.

    .venv/bin/python bench/ui.py --points 1000000

Builds a dataset of N samples with a map of N points (clustered, made up: the UI's speed does
not depend on where the points came from) straight into a fresh store, serves it on 127.0.0.1,
and drives Debian's Chromium (/usr/bin/chromium) with Playwright. The UI marks its own moments
(`performance.mark`): `visor:map-drawn` when regl-scatterplot has drawn the points,
`visor:lasso-end` when a lasso closes, `visor:count` when the grid's count arrives and
`visor:map-redrawn` when a change has been drawn.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright
from samples_query import build, serve

from visor.services.maps import points_stream, with_tags
from visor.store import Store
from visor.store import maps as map_rows
from visor.synthetic import write_map

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from browser import CHROMIUM, FLAGS


def add_map(home: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, (30, 2))
    xy = centres[rng.integers(0, 30, n)] + rng.normal(0, 0.8, (n, 2))
    store = Store(home / "visor.duckdb")
    write_map(store, 1, xy)
    store.close()


def server_points(home: Path, rounds: int = 5) -> None:
    """The server's part of a map's points after a write, interleaved: made anew (every
    column read and encoded, as after a label edit) and after a write of tags alone (the kept
    points with their tags read again)."""
    store = Store(home / "visor.duckdb")
    kept = points_stream(map_rows.points(store, 1, 1))
    anew, tags = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        whole = points_stream(map_rows.points(store, 1, 1))
        anew.append(time.perf_counter() - t)
        t = time.perf_counter()
        patched = with_tags(kept, map_rows.point_tags(store, 1, 1))
        tags.append(time.perf_counter() - t)
        assert whole == patched
    store.close()
    print(
        f"server, points made anew: median {statistics.median(anew) * 1000:.0f} ms; after a "
        f"tag: {statistics.median(tags) * 1000:.0f} ms ({len(kept) / 1e6:.1f} MB)"
    )


def mark(page, name: str) -> float | None:  # type: ignore[no-untyped-def]
    found = page.evaluate("name => performance.getEntriesByName(name).map(e => e.startTime)", name)
    return found[-1] if found else None


def one_run(browser, url: str, tag: str) -> tuple[float, float, float, str]:  # type: ignore[no-untyped-def]
    """One page load: ms to the first drawn frame, ms from the end of a lasso over the left
    half of the map to the grid's new count, ms from the answer to tagging the lasso to the
    map drawn with it, and the lasso's count."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(
        "() => performance.getEntriesByName('visor:map-drawn').length > 0",
        timeout=60_000,
    )
    first_frame = mark(page, "visor:map-drawn") or 0.0
    page.wait_for_function("() => performance.getEntriesByName('visor:count').length > 0")
    # A lasso around the left half of the plot (Shift + drag).
    box = page.get_by_test_id("map").locator("canvas").bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    w, h = box["width"], box["height"]
    corners = [(cx - w * 0.49, cy - h * 0.49), (cx, cy - h * 0.49)]
    corners += [(cx, cy + h * 0.49), (cx - w * 0.49, cy + h * 0.49)]
    counts = page.evaluate("performance.getEntriesByName('visor:count').length")
    page.keyboard.down("Shift")
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in [*corners[1:], corners[0]]:
        page.mouse.move(x, y, steps=10)
    released = page.evaluate("performance.now()")
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function(
        f"() => performance.getEntriesByName('visor:count').length > {counts}",
        timeout=60_000,
    )
    first_count = page.evaluate(f"performance.getEntriesByName('visor:count')[{counts}].startTime")
    lasso = first_count - released
    points = page.evaluate(
        "performance.getEntriesByType('resource').find(e => e.name.endsWith('/points'))"
        "?.responseEnd"
    )
    print(
        f"  points arrived {points:.0f} ms, map drawn {first_frame:.0f} ms; "
        f"lasso: mouse up -> ids {mark(page, 'visor:lasso-ids') - released:.0f} "
        f"-> posted {mark(page, 'visor:selection') - released:.0f} "
        f"-> grid count {lasso:.0f} ms"
    )
    size = page.get_by_test_id("count").inner_text()
    # Tag the lasso: the map fetches its points again and draws the new tag codes (the
    # first frame drawn after the answer: the lasso's own fading may still be drawing).
    page.get_by_label("tag", exact=True).fill(tag)  # a new tag each run: a real change
    with page.expect_response(lambda r: r.url.endswith("/tag")) as answer:
        page.get_by_test_id("tagbar").get_by_role("button", name="Add").click()
    answer.value.finished()
    answered = page.evaluate(
        "performance.getEntriesByType('resource').filter(e => e.name.endsWith('/tag'))"
        ".at(-1).responseEnd"
    )
    after = f"performance.getEntriesByName('visor:map-redrawn').find(e => e.startTime > {answered})"
    page.wait_for_function(f"() => {after} !== undefined", timeout=60_000)
    tagged = page.evaluate(f"{after}.startTime") - answered
    print(f"  tag answered -> map drawn with it {tagged:.0f} ms")
    context.close()
    return first_frame, lasso, tagged, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--split",
        help="open the page with this split filter (the lasso's count then comes "
        "from the server instead of the lasso's own size)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        build(home, args.points)
        add_map(home, args.points)
        print(f"built {args.points:,} samples and map points in {time.perf_counter() - t0:.1f} s")
        server_points(home)
        server, thread = serve(home, args.port)
        url = f"http://127.0.0.1:{args.port}/?dataset=big&boxes=none"
        if args.split:
            url += f"&split={args.split}"
        first_frames, lassos, tags, sizes = [], [], [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for run in range(args.runs):
                first, lasso, tagged, size = one_run(browser, url, f"bench-{run}")
                first_frames.append(first)
                lassos.append(lasso)
                tags.append(tagged)
                sizes.append(size)
            browser.close()
        server.should_exit = True
        thread.join()
    print(f"first drawn frame after navigation: {[round(t) for t in first_frames]} ms")
    print(
        f"mouse up ending a lasso -> grid count: {[round(t) for t in lassos]} ms "
        f"({sizes[-1]} in the lasso)"
    )
    print(f"tag answered -> map drawn with it: {[round(t) for t in tags]} ms")
    print(
        f"median: first frame {statistics.median(first_frames):.0f} ms (goal 3000), "
        f"lasso {statistics.median(lassos):.0f} ms (goal 300), "
        f"tag to map {statistics.median(tags):.0f} ms"
    )


if __name__ == "__main__":
    main()
