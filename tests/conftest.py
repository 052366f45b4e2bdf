"""Shared fixtures: real files, a real store, a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from browser import CHROMIUM, FLAGS
from moto.server import ThreadedMotoServer
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from visor.config import Settings, get_settings

# The model runs on PyTorch in tests unless a test names a backend (OpenVINO converts each
# model once per home folder: seconds every test would pay).
os.environ.setdefault("VISOR_EMBED_BACKEND", "torch")
from visor.synthetic import generate
from visor.workspace import Workspace


def write_image(
    path: Path, size: tuple[int, int] = (64, 48), color=(200, 30, 30), fmt="JPEG", mode: str = "RGB"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt)
    return path


def photo(seed: int) -> Image.Image:
    """A smooth random 320x240 picture, different for every seed."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    return small.resize((320, 240), Image.Resampling.BICUBIC)


# A UI assertion waits up to 15 s, not Playwright's 5: beside another test worker running a
# model, a page can take longer to show what it will show.
expect.set_options(timeout=15_000)


class WatchedBrowser:
    """A Browser whose every page reports its uncaught errors and console errors: a UI test
    fails on any (a library's error thrown on every page load once went unnoticed)."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.errors: list[str] = []

    def new_context(self, **kwargs: Any) -> BrowserContext:
        context = self._browser.new_context(**kwargs)
        context.on("page", self._watch)
        return context

    def new_page(self, **kwargs: Any) -> Page:
        page = self._browser.new_page(**kwargs)
        self._watch(page)
        return page

    def _watch(self, page: Page) -> None:
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: pageerror: {e}"))
        page.on(
            "response",
            lambda r: (
                self.errors.append(f"{page.url}: HTTP {r.status} {r.request.method} {r.url}")
                if r.status >= 400
                else None
            ),
        )
        page.on("console", lambda m: self._console(page, m))

    def _console(self, page: Page, message: Any) -> None:
        # A failed request is logged by Chromium without its address: the response listener
        # above says it with the address, once.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"{page.url}: console.error: {message.text}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (the UI tests); see WatchedBrowser."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield WatchedBrowser(browser)  # type: ignore[misc]
        browser.close()


@pytest.fixture(autouse=True)
def no_page_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test whose pages threw or logged an error (those its marker `page_errors`
    expects apart: a test of a broken image expects the browser to say so)."""
    if "browser" not in request.fixturenames:
        yield
        return
    watched = request.getfixturevalue("browser")
    watched.errors.clear()
    yield
    marker = request.node.get_closest_marker("page_errors")
    expected = marker.args if marker else ()
    found = [e for e in watched.errors if not any(x in e for x in expected)]
    watched.errors.clear()
    assert not found, "errors in the page:\n" + "\n".join(found)


SHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page of its own context; a failing test leaves its screenshot under tests/screenshots/.
    The locale is fixed: counts are formatted with the browser's (1,234 vs 1.234)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic COCO dataset, written once per test session."""
    return generate(tmp_path_factory.mktemp("demo"), 40, size=(160, 120), seed=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = Workspace(settings)
    yield ws
    ws.close()


@pytest.fixture(params=["whole", "streamed"])
def coco_parsing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a COCO test both ways a file is read: parsed whole (small files) and streamed
    (files over the in-memory limit; the limit is lowered to 0 to take that path)."""
    if request.param == "streamed":
        monkeypatch.setattr("visor.formats.coco.IN_MEMORY_LIMIT", 0)
    return str(request.param)


def ingest(ws: Workspace, root: Path | str, name: str = "ds", **kw) -> dict:
    job = ws.ingest(str(root), name, **kw)
    return ws.jobs.wait(job["id"], timeout=120)


def run_cli(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`visor ARGS` in a child process with VISOR_HOME=home."""
    return subprocess.run(
        [sys.executable, "-m", "visor", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "VISOR_HOME": str(home), **(env or {})},
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`visor serve` in a child process, on a free port of 127.0.0.1."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "VISOR_HOME": str(home), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "visor", "serve", "--port", str(self.port), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read().decode()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    @property
    def headers(self) -> dict[str, str]:
        """The token a client sends with changes (from the server's record, as the CLI does)."""
        record = json.loads((self.home / "server.json").read_text())
        return {"X-Visor-Token": record["token"]}

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_home(tmp_path: Path) -> Path:
    return tmp_path / "server-home"


@pytest.fixture
def server(server_home: Path) -> Iterator[Server]:
    srv = Server(server_home).start()
    yield srv
    srv.stop()


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


# The longest modules first: `make test` runs the files on two workers (pytest-xdist, a whole
# file per worker at a time), and a long file picked up last would run alone at the end.
LONGEST_FIRST = (
    "test_ray.py",
    "test_operations.py",
    "test_clients.py",
    "test_embed_api.py",
    "test_ui.py",
    "test_ui_map.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the test item (the UI tests screenshot failures)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "VISOR_S3_ENDPOINT_URL": endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield endpoint
    get_settings.cache_clear()
    server.stop()
