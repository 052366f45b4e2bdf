"""Nearest neighbours: a copy of an image is its nearest neighbour; uploads; filters; errors."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from conftest import Server, ingest, photo, wait_job

from visor.errors import Conflict, FormatError, InvalidInput, NotFound
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"


@pytest.fixture
def copies_root(tmp_path: Path) -> Path:
    """12 different images in train/ and val/, plus re-encoded copies of two of them."""
    root = tmp_path / "photos"
    for i in range(12):
        split = "train" if i < 8 else "val"
        (root / split).mkdir(parents=True, exist_ok=True)
        photo(i).save(root / split / f"img{i:02d}.jpg", quality=95)
    photo(3).save(root / "val" / "copy_of_03.jpg", quality=70)
    photo(5).resize((300, 225)).save(root / "train" / "copy_of_05.png")
    return root


def _ids(ws: Workspace) -> dict[str, int]:
    return {s["filename"]: s["id"] for s in ws.dataset("ds").samples(limit=100)[1]}


def test_copies_are_nearest_and_filters_apply(workspace: Workspace, copies_root: Path) -> None:
    ingest(workspace, copies_root)
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, wait=True)
    ids = _ids(workspace)
    for original, copy in (("img03.jpg", "copy_of_03.jpg"), ("img05.jpg", "copy_of_05.png")):
        found = dataset.similar(ids[original], k=5, model=TINY)
        assert found[0]["sample_id"] == ids[copy] and found[0]["path"].endswith(copy)
        assert ids[original] not in [f["sample_id"] for f in found]
        assert [f["distance"] for f in found] == sorted(f["distance"] for f in found)
    # Limited to train, the val copy of img03 cannot be an answer.
    in_train = dataset.similar(
        ids["img03.jpg"], k=20, model=TINY, filters=SampleFilter(split="train")
    )
    assert ids["copy_of_03.jpg"] not in [f["sample_id"] for f in in_train]
    assert len(in_train) == 8  # 9 train images (8 + copy_of_05) less the query itself
    upload = (copies_root / "train" / "img01.jpg").read_bytes()
    found = dataset.similar_to_image(upload, "img01.jpg", k=3, model=TINY)
    assert found[0]["sample_id"] == ids["img01.jpg"] and found[0]["distance"] < 1e-4


def test_search_errors(workspace: Workspace, copies_root: Path) -> None:
    ingest(workspace, copies_root)
    dataset = workspace.dataset("ds")
    with pytest.raises(Conflict, match="run embed first"):
        dataset.similar(0, model=TINY)
    dataset.embed(TINY, wait=True)
    for k in (0, 1001):
        with pytest.raises(InvalidInput, match=f"k={k}"):
            dataset.similar(0, k=k, model=TINY)
    with pytest.raises(NotFound, match="sample 999"):
        dataset.similar(999, model=TINY)
    with pytest.raises(FormatError, match=r"notes\.txt: not an image"):
        dataset.similar_to_image(b"plain text", "notes.txt", model=TINY)


def test_similar_over_http(server: Server, copies_root: Path) -> None:
    with httpx.Client(headers=server.headers, base_url=server.url, timeout=120) as c:
        wait_job(
            c, c.post("/api/ingest", json={"name": "p", "path": str(copies_root)}).json()["id"]
        )
        job = c.post("/api/datasets/p/embed", json={"model": TINY}).json()
        assert wait_job(c, job["id"])["state"] == "done"
        items = c.get("/api/datasets/p/samples", params={"limit": 100}).json()["items"]
        ids = {s["filename"]: s["id"] for s in items}
        r = c.get(
            f"/api/datasets/p/samples/{ids['img03.jpg']}/similar", params={"k": 3, "model": TINY}
        )
        assert r.status_code == 200, r.text
        assert r.json()["neighbours"][0]["sample_id"] == ids["copy_of_03.jpg"]
        r = c.get(f"/api/datasets/p/samples/{ids['img03.jpg']}/similar", params={"k": 0})
        assert r.status_code == 422
        assert (
            c.get("/api/datasets/p/samples/999/similar", params={"model": TINY}).status_code == 404
        )
        buf = io.BytesIO()
        photo(7).save(buf, "JPEG", quality=80)
        r = c.post(
            "/api/datasets/p/similar/upload",
            params={"k": 2, "model": TINY},
            files={"file": ("query.jpg", buf.getvalue(), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        assert r.json()["neighbours"][0]["sample_id"] == ids["img07.jpg"]
        r = c.post(
            "/api/datasets/p/similar/upload",
            params={"model": TINY},
            files={"file": ("query.jpg", b"not an image", "image/jpeg")},
        )
        assert r.status_code == 422 and "query.jpg" in r.json()["error"]["message"]


@pytest.mark.parametrize(("n", "lists"), [(7, 1), (98, 2), (1_000, 25), (1_000_000, 1000)])
def test_a_small_index_trains_each_list_on_enough_vectors(
    n: int, lists: int, capfd: pytest.CaptureFixture[str]
) -> None:
    """Each list's centre is trained on 39 vectors or more (FAISS's least): the corpus's 98
    vectors get 2 lists, not 10, and FAISS says nothing on stderr."""
    import numpy as np

    from visor.services.ivf import IvfShape, ivf_index

    shape = IvfShape.for_size(n)
    assert shape.lists == lists and shape.probes <= shape.lists
    if n <= 1_000:
        unit = np.random.default_rng(0).normal(size=(n, 32)).astype(np.float32)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        assert ivf_index(unit, None, shape).ntotal == n
        assert "WARNING" not in capfd.readouterr().err
