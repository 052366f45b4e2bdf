"""The whole workflow on one large dataset, step by step as a user runs it, each step timed
with the peak memory (RSS) of its process.

    .venv/bin/python bench/scale.py --samples 1000000
    .venv/bin/python bench/scale.py --samples 100000,300000,1000000   # the growth, one table

The dataset: a COCO dataset of N images in two splits (90% train, 10% val) with 2 boxes each.
Its image files are tiny (an 8x8 JPEG, each made unique by a comment of its number, so that
files share sizes as a large dataset's do and the duplicates job hashes them); their COCO
sizes say 640x480. Its vectors: N 768-d vectors from a mixture of clusters of varied size
(log-normal) and spread, with planted near-duplicates (0.2% of the samples: a copy of another
sample's vector plus noise of cosine ~0.9995; a tenth of them also byte-identical files, and a
third across the splits: leaks), written through the store's normal path (the embed job's
`write_batch`, in batches of 4,096) since no model runs here. A box's class follows its
image's cluster, with 1% planted wrong.

Steps, each a process of its own (the CLI without a server, as a user runs it; RSS from
`wait4`): ingest, vector load, `map` (UMAP, sampled fit above 200K), `duplicates`,
`uniqueness` (the neighbour graph duplicates searched, read again), `import-predictions` (a
detector's boxes, one per ground-truth box, with the image's true class), `label-errors
--predictions` (cleanlab's detection check), `health`
(computes image quality, the one signal missing), `export --format parquet`; then `visor
serve` and, in Chromium: the map's first drawn frame, a lasso over the left half of the map
(the grid's count after mouse up), and a grid filter (a page opened with `split=val`: time to
its count). Prints a JSON row per size and a Markdown table of them.
The planted pairs found in one duplicate group are counted (`recall`).
Files are kept under --data (made once per size); the store is made anew each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

VISOR = [str(Path(sys.executable).with_name("visor"))]
DIM = 768
CHUNK = 4096
CLASSES = 80
PLANTED = 0.002
MODEL = "scale-v1"


def _template() -> bytes:
    out = BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 150)).save(out, "JPEG", quality=50)
    return out.getvalue()


def _split(i: np.ndarray) -> np.ndarray:
    return np.where((i * 2654435761 % 2**32) % 10 == 0, "val", "train")


def planted_pairs(n: int, seed: int = 0) -> np.ndarray:
    """(m, 2) sample ids (original, copy): the planted near-duplicates, copy > original."""
    rng = np.random.default_rng(seed + 1)
    copies = np.sort(rng.choice(np.arange(1, n), int(n * PLANTED), replace=False))
    # each copy is near its original (within a chunk's length), in whichever split it falls
    offsets = rng.integers(1, np.minimum(copies, CHUNK) + 1)
    originals = copies - offsets
    return np.stack([originals, copies], axis=1)


def make_files(root: Path, n: int, seed: int = 0) -> None:
    """The image files and the COCO annotations (one file per split)."""
    template = _template()
    ids = np.arange(n)
    split = _split(ids)
    pairs = planted_pairs(n, seed)
    exact = {int(c): int(o) for o, c in pairs[::10]}  # a tenth byte-identical
    for name in ("train", "val"):
        (root / "images" / name).mkdir(parents=True, exist_ok=True)

    def content(i: int) -> bytes:
        i = exact.get(i, i)
        note = f"visor-scale {i:08d}".encode() + b" " * (i % 251)
        return template[:2] + b"\xff\xfe" + (len(note) + 2).to_bytes(2, "big") + note + template[2:]

    for i in range(n):
        with open(root / "images" / split[i] / f"{i:08d}.jpg", "wb") as f:
            f.write(content(i))
    classes = cluster_classes(n, seed)
    rng = np.random.default_rng(seed + 2)
    wrong = rng.random(n) < 0.01
    classes = np.where(wrong, rng.integers(0, CLASSES, n), classes)
    (root / "annotations").mkdir(exist_ok=True)
    for name in ("train", "val"):
        members = ids[split == name]
        with open(root / "annotations" / f"instances_{name}.json", "w") as f:
            f.write('{"categories": ')
            json.dump([{"id": c + 1, "name": f"class{c}"} for c in range(CLASSES)], f)
            f.write(', "images": [')
            f.write(",".join(
                f'{{"id": {i + 1}, "file_name": "{i:08d}.jpg", "width": 640, "height": 480}}'
                for i in members
            ))  # fmt: skip
            f.write('], "annotations": [')
            f.write(",".join(
                f'{{"id": {2 * i + b + 1}, "image_id": {i + 1}, "category_id": '
                f'{classes[i] + 1}, "bbox": [{40 + 200 * b}, 60, 120, 90], "iscrowd": 0}}'
                for i in members for b in (0, 1)
            ))  # fmt: skip
            f.write("]}")
    write_predictions(root / "predictions.parquet", n, seed)
    (root / ".complete").touch()


def write_predictions(path: Path, n: int, seed: int) -> None:
    """A detector's boxes: each ground-truth box found again, a little off, with its image's
    true class (so the planted wrong labels disagree with it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = np.repeat(np.arange(n), 2)
    rng = np.random.default_rng(seed + 3)
    split = _split(ids)
    names = [f"images/{s}/{i:08d}.jpg" for s, i in zip(split.tolist(), ids.tolist(), strict=True)]
    truth = cluster_classes(n, seed)[ids]
    table = pa.table({
        "file_name": names,
        "class": [f"class{c}" for c in truth.tolist()],
        "x": 40 + 200 * (np.arange(2 * n) % 2) + rng.normal(0, 2, 2 * n),
        "y": 60 + rng.normal(0, 2, 2 * n),
        "w": 120 + rng.normal(0, 2, 2 * n),
        "h": 90 + rng.normal(0, 2, 2 * n),
        "score": rng.uniform(0.5, 0.99, 2 * n),
    })  # fmt: skip
    pq.write_table(table, path)


def _mixture(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each sample's cluster; the clusters' centres, spreads and directions."""
    rng = np.random.default_rng(seed)
    k = max(n // 400, 8)
    weights = rng.lognormal(0, 1.2, k)
    cluster = rng.choice(k, n, p=weights / weights.sum())
    centres = rng.standard_normal((k, DIM)).astype(np.float32)
    spread = rng.uniform(0.15, 0.6, k).astype(np.float32)
    bases = rng.standard_normal((k, 8, DIM)).astype(np.float32)
    return cluster, centres, spread, bases


def cluster_classes(n: int, seed: int = 0) -> np.ndarray:
    return _mixture(n, seed)[0] % CLASSES


def vector_chunks(n: int, seed: int = 0) -> Any:
    """The dataset's vectors, CHUNK rows at a time in order (planted copies included),
    deterministic: a copy is its original's final vector plus noise (originals are at most
    CHUNK rows back, so the last two chunks are kept)."""
    cluster, centres, spread, bases = _mixture(n, seed)
    pairs = planted_pairs(n, seed)
    kept: dict[int, np.ndarray] = {}
    for start in range(0, n, CHUNK):
        ids = np.arange(start, min(start + CHUNK, n))
        rng = np.random.default_rng([seed, 7, start])
        c = cluster[ids]
        w = rng.standard_normal((len(ids), 8)).astype(np.float32)
        out = centres[c] + spread[c, None] * np.einsum("nk,nkd->nd", w, bases[c]) * 0.4
        out += rng.standard_normal((len(ids), DIM)).astype(np.float32) * 0.15
        kept[start] = out
        for original, copy in pairs[(pairs[:, 1] >= start) & (pairs[:, 1] < ids[-1] + 1)]:
            base = kept[(original // CHUNK) * CHUNK][original % CHUNK]
            noise = np.random.default_rng([seed, 9, int(copy)]).standard_normal(DIM)
            out[copy - start] = base + noise.astype(np.float32) * 0.03 * np.linalg.norm(base) / 28
        kept.pop(start - 2 * CHUNK, None)
        yield start, out


def write_vectors(home: Path, n: int, seed: int) -> None:
    """The vector-load step (run as a process of its own)."""
    from visor.config import Settings
    from visor.store import embeddings as vector_rows
    from visor.workspace import Workspace

    with Workspace(Settings(home=home)) as ws:
        dataset_id = ws.dataset("scale").id
        ids = sample_ids(ws.store, dataset_id)
        vector_rows.ensure_model(ws.store, MODEL, DIM)
        for start, chunk in vector_chunks(n, seed):
            vector_rows.write_batch(
                ws.store, dataset_id, MODEL, ids[start : start + len(chunk)], chunk, [],
                job_id=None, replace=False,
            )  # fmt: skip


def sample_ids(store: Any, dataset_id: int) -> np.ndarray:
    """Store sample id per bench sample number (from the file name)."""
    rows = store.query_arrow(
        "SELECT id, filename FROM samples WHERE dataset_id = ?", [dataset_id]
    ).to_pydict()
    by_number = np.empty(len(rows["id"]), np.int64)
    for sid, name in zip(rows["id"], rows["filename"], strict=True):
        by_number[int(name[:8])] = sid
    return by_number


def run_step(name: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{output[-3000:]}")
    row = {"step": name, "seconds": round(seconds, 1), "peak_rss_gb": usage.ru_maxrss / 2**20}
    row["peak_rss_gb"] = round(row["peak_rss_gb"], 2)
    print(f"  {name}: {row['seconds']} s, peak RSS {row['peak_rss_gb']} GB", file=sys.stderr)
    return row


def recall(home: Path, n: int, seed: int) -> float:
    import duckdb

    con = duckdb.connect(str(home / "visor.duckdb"), read_only=True)
    rows = con.execute("SELECT filename, duplicate_group FROM samples").fetchall()
    con.close()
    group = np.full(n, -1, np.int64)
    for name, g in rows:
        if g is not None:
            group[int(name[:8])] = g
    pairs = planted_pairs(n, seed)
    a, b = group[pairs[:, 0]], group[pairs[:, 1]]
    return float(np.mean((a >= 0) & (a == b)))


def ui_steps(home: Path, env: dict[str, str], port: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright
    from ui import mark, one_run

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from browser import CHROMIUM, FLAGS

    server = subprocess.Popen(
        [*VISOR, "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not (home / "server.json").exists():
            time.sleep(0.2)
        time.sleep(1.0)
        url = f"http://127.0.0.1:{port}/?dataset=scale&boxes=none"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            first, lasso, size = one_run(browser, url)  # warm: the points cached
            first, lasso, size = one_run(browser, url)
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(url + "&split=val")
            page.wait_for_function(
                "() => performance.getEntriesByName('visor:count').length > 0", timeout=60_000
            )
            filtered = mark(page, "visor:count") or 0.0
            shown = page.get_by_test_id("count").inner_text()
            context.close()
            browser.close()
    finally:
        server.terminate()
        _, _, usage = os.wait4(server.pid, 0)
    return {
        "ui_first_frame_ms": round(first),
        "ui_lasso_ms": round(lasso),
        "ui_lasso_count": size,
        "ui_filter_ms": round(filtered),
        "ui_filter_count": shown,
        "serve_peak_rss_gb": round(usage.ru_maxrss / 2**20, 2),
    }


def one_size(n: int, data: Path, seed: int, port: int, ui: bool, skip: set[str]) -> dict[str, Any]:
    root = data / str(n)
    if not (root / ".complete").exists():
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        make_files(root, n, seed)
        print(f"wrote {n:,} files in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    row: dict[str, Any] = {"samples": n}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "VISOR_HOME": str(home), "VISOR_MODEL": MODEL}
        steps = [
            ("ingest", [*VISOR, "ingest", str(root), "--name", "scale"]),
            ("vectors", [sys.executable, __file__, "--write-vectors", str(n), "--home",
                         str(home), "--seed", str(seed)]),
            ("map", [*VISOR, "map", "scale", "--no-uniqueness"]),
            ("duplicates", [*VISOR, "duplicates", "scale", "--threshold", "0.99"]),
            ("uniqueness", [*VISOR, "uniqueness", "scale"]),
            ("predictions", [*VISOR, "import-predictions", "scale",
                             str(root / "predictions.parquet"), "--source", "det"]),
            ("label-errors", [*VISOR, "label-errors", "scale", "--predictions", "det"]),
            ("health", [*VISOR, "health", "scale"]),
            ("export", [*VISOR, "export", "scale", str(Path(tmp) / "out"), "--format",
                        "parquet", "--images", "none"]),
        ]  # fmt: skip
        for name, command in steps:
            if name in skip:
                continue
            step = run_step(name, command, env)
            row[f"{name}_s"], row[f"{name}_rss_gb"] = step["seconds"], step["peak_rss_gb"]
            if name == "duplicates":
                row["planted_pairs_recall"] = round(recall(home, n, seed), 4)
        if ui:
            row.update(ui_steps(home, env, port))
    print(json.dumps(row))
    return row


def table(rows: list[dict[str, Any]]) -> str:
    steps = ["ingest", "vectors", "map", "duplicates", "uniqueness", "predictions",
             "label-errors", "health", "export"]  # fmt: skip
    head = "| step | " + " | ".join(f"{r['samples']:,}" for r in rows) + " |"
    lines = [head, "|---|" + "---|" * len(rows)]
    for step in steps:
        cells = [
            f"{r[f'{step}_s']} s, {r[f'{step}_rss_gb']} GB" if f"{step}_s" in r else "skipped"
            for r in rows
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    for key in ("planted_pairs_recall", "ui_first_frame_ms", "ui_lasso_ms", "ui_filter_ms",
                "serve_peak_rss_gb"):  # fmt: skip
        if all(key in r for r in rows):
            lines.append(f"| {key} | " + " | ".join(str(r[key]) for r in rows) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--samples", default="100000", help="one size or several, a,b,c")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--no-ui", action="store_true", help="skip the Chromium steps")
    parser.add_argument("--skip", default="", help="steps to leave out, e.g. label-errors,health")
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "visor-bench-scale"
    )
    parser.add_argument("--write-vectors", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_vectors:
        write_vectors(args.home, args.write_vectors, args.seed)
        return
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores", file=sys.stderr)
    skip = set(filter(None, args.skip.split(",")))
    rows = [
        one_size(int(n), args.data, args.seed, args.port, not args.no_ui, skip)
        for n in args.samples.split(",")
    ]
    print(table(rows))


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
