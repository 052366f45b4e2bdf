"""How the UI tests (and bench/ui.py) start Chromium: Debian's package, headless."""

import os
import shutil

# VISOR_CHROMIUM names another build; else the one on PATH; else where Debian puts it.
CHROMIUM = os.environ.get("VISOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def draw_lasso(page, corners: list[tuple[float, float]]) -> list[list[float]]:
    """Draw a lasso through `corners` (screen pixels) with Shift held; the polygon the map
    took, in map coordinates."""
    import json

    from playwright.sync_api import expect

    page.keyboard.down("Shift")
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in [*corners[1:], corners[0]]:
        page.mouse.move(x, y, steps=15)
    page.mouse.up()
    page.keyboard.up("Shift")
    panel = page.locator(".map-panel")
    expect(panel).not_to_have_attribute("data-lasso", "")
    return json.loads(panel.get_attribute("data-lasso") or "[]")


def inside(x: float, y: float, polygon: list[list[float]]) -> bool:
    """Even-odd rule, written here independently of the UI's own."""
    found = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        (xi, yi), (xj, yj) = polygon[i], polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            found = not found
        j = i
    return found
