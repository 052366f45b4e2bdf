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
