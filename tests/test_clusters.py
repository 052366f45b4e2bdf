"""Density clusters on a map: planted blobs found and named by their dominant class, the
`cluster` filter, a map of the corpus's boxes, and what is refused."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import visor
from visor.config import Settings
from visor.errors import InvalidInput, NotFound
from visor.synthetic import write_map, write_samples
from visor.workspace import Workspace

YOLO = Path(__file__).parent / "data" / "yolo_roboflow_trees"
TINY = "random:dinov2-tiny"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:  # type: ignore[misc]
    with Workspace(Settings(home=tmp_path / "home")) as workspace:
        yield workspace


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Six well-separated blobs; blob k's samples are 90% class k (the rest any of the
    others), except blob 5, half `a` and half `b` (a region mixing classes)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [30, 0], [0, 30], [30, 30], [60, 15], [-30, 15]], float)
    blob = rng.integers(0, len(centres), n)
    xy = (centres[blob] + rng.normal(0, 1.5, (n, 2))).astype(np.float32)
    names = [f"kind{k}" for k in range(5)]
    classes = []
    for k in blob:
        if k == 5:
            classes.append([str(rng.choice(["a", "b"]))])
        elif rng.random() < 0.9:
            classes.append([names[k]])
        else:
            classes.append([str(rng.choice([c for c in names if c != names[k]]))])
    return xy, blob, classes


def test_planted_blobs_are_found_and_named(ws: Workspace) -> None:
    n = 3000
    xy, blob, classes = _blobs(n)
    write_samples(ws.store, n, "blobs", classes_of=classes)
    write_map(ws.store, 1, xy)
    ds = ws.dataset("blobs")
    assert ds.clusters()["clusters"] is None  # never clustered yet
    result = ds.find_clusters(wait=True)["result"]
    assert result["clusters"] == 6 and result["points"] == n and result["min_cluster_size"] == 30
    found = ds.clusters()
    per_point = np.full(n, -1)
    for c in found["clusters"]:
        table = ds.to_arrow(visor.SampleFilter(cluster=c["cluster"]))
        members = np.array(table.column("sample_id").to_pylist())
        assert len(members) == c["size"]  # the filter holds exactly the cluster
        per_point[members] = c["cluster"]
        planted = np.bincount(blob[members]).argmax()
        if planted == 5:
            assert c["mixed"] and c["label"].split()[0] in ("a", "b")
        else:
            assert not c["mixed"] and c["label"].startswith(f"kind{planted} ")
            assert c["classes"][0]["class"] == f"kind{planted}"
            assert 0.85 <= c["classes"][0]["share"] <= 0.95
        x0, y0, x1, y1 = c["bounds"]
        assert x0 <= c["centroid"][0] <= x1 and y0 <= c["centroid"][1] <= y1
        assert len(c["outline"]) >= 3
    assert (per_point == -1).sum() == found["noise"] == result["noise"]
    # Sorted by cluster: every cluster's members together, in cluster order, noise last.
    page = (
        ds.samples(sort="cluster", limit=1000)[1]
        + ds.samples(sort="cluster", offset=1000, limit=1000)[1]
        + ds.samples(sort="cluster", offset=2000, limit=1000)[1]
    )
    order = [per_point[s["id"]] for s in page]
    clustered = [c for c in order if c >= 0]
    assert clustered == sorted(clustered) and order[len(clustered) :] == [-1] * found["noise"]
    assert adjusted_rand_score(blob, per_point) >= 0.9
    assert result["mixing_classes"] == 1
    # Clustering again replaces the last clustering (a coarser one: fewer clusters).
    again = ds.find_clusters(min_cluster_size=n // 2, wait=True)["result"]
    assert again["clusters"] < 6 and len(ds.clusters()["clusters"]) == again["clusters"]


def test_a_cluster_name_says_its_folder_and_split_once() -> None:
    """A cluster all in train/ and in split train is "..., train", not "..., train, train"."""
    import pyarrow as pa

    from visor.services.clusters import describe

    where = [("train", "train")] * 20 + [("valid", "val")] * 20
    table = pa.table({
        "x": [float(i >= 20) * 50 + i % 5 for i in range(40)],
        "y": [float(i % 7) for i in range(40)],
        "classes": [["Tree"]] * 40,
        "tags": [[] for _ in range(40)],
        "path": [f"{folder}/{i}.jpg" for i, (folder, _) in enumerate(where)],
        "split": [split for _, split in where],
    })  # fmt: skip
    found = describe(table, np.array([0] * 20 + [1] * 20))
    assert [c["label"] for c in found] == ["Tree 100%, train", "Tree 100%, valid, val"]


def test_the_corpus_boxes_clustered(ws: Workspace) -> None:
    """On a map of the corpus's 101 boxes: every box in one cluster or in none, and the
    filter gives the images holding a cluster's boxes."""
    ws.ingest(str(YOLO), "y", wait=True)
    ds = ws.dataset("y")
    ds.embed(TINY, objects=True, precision="fp32", wait=True)
    ds.make_map(method="pca", objects=True, wait=True)
    job = ds.find_clusters(min_cluster_size=5, wait=True)
    result, found = job["result"], ds.clusters()
    assert re.fullmatch(  # as visor jobs lists it, and the CLI says it
        r"map 1: 2 clusters of at least 5 points among 101 \(31 in none\); \d+ mixing classes "
        r"\([\d.]+ s\)",
        job["message"],
    )
    assert result["points"] == 101 and len(found["clusters"]) == result["clusters"] == 2
    assert found["noise"] == 31 and [c["size"] for c in found["clusters"]] == [
        c["size"] for c in sorted(found["clusters"], key=lambda c: -c["size"])
    ]
    assert sum(c["size"] for c in found["clusters"]) + found["noise"] == 101
    boxes = ws.sql(
        "SELECT cluster, count(DISTINCT sample_id) AS images FROM map_points "
        "WHERE cluster IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    for row in boxes:
        total = ds.samples(visor.SampleFilter(cluster=row["cluster"]), limit=1)[0]
        assert total == row["images"]
    for c in found["clusters"]:
        shares = [s["share"] for s in c["classes"]]
        assert shares == sorted(shares, reverse=True) and c["classes"][0]["class"] in (
            "Tree",
            "Dead",
            "Alive",
        )
    # Fewer points than the minimum cluster size: no clusters, said plainly.
    job = ds.find_clusters(min_cluster_size=500, wait=True)
    none = job["result"]
    assert none["clusters"] == 0 and none["noise"] == 101
    assert (
        none["message"]
        == job["message"]
        == ("map 1 has 101 points, fewer than the minimum cluster size 500: no clusters")
    )
    assert ds.clusters()["clusters"] == []


def test_clusters_named_by_words_with_a_clip_map(ws: Workspace) -> None:
    """With a vocabulary, each cluster's likeliest word (its members' mean direction against
    "a photo of a {word}") leads its label."""
    from visor.embedding.models import load_model

    ws.ingest(str(YOLO), "y", wait=True)
    ds = ws.dataset("y")
    ds.embed("random:clip-tiny", precision="fp32", wait=True)
    ds.make_map(method="pca", wait=True)
    words = ["forest", "road", "field"]
    ds.find_clusters(min_cluster_size=2, vocabulary=words, wait=True)
    found = ds.clusters()["clusters"]
    assert found
    ids, vectors = ds.embeddings("random:clip-tiny")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    model = load_model("random:clip-tiny")
    texts = model.encode_text([f"a photo of a {w}" for w in words])
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    for c in found:
        members = (
            ws.sql(f"SELECT sample_id FROM map_points WHERE cluster = {c['cluster']} ORDER BY 1")
            .column("sample_id")
            .to_pylist()
        )
        centre = unit[np.isin(ids, members)].mean(axis=0)
        want = words[int((texts @ centre).argmax())]
        assert c["words"]["word"] == want and c["label"].startswith(f"{want} · ")
    ds.embed("random:dinov2-tiny", precision="fp32", wait=True)
    ds.make_map("random:dinov2-tiny", method="pca", wait=True)
    with pytest.raises(InvalidInput, match="embeds images only"):
        ds.find_clusters(vocabulary=words)


def test_what_is_refused(ws: Workspace) -> None:
    write_samples(ws.store, 50, "few")
    ds = ws.dataset("few")
    with pytest.raises(NotFound, match="has no map yet"):
        ds.find_clusters()
    write_map(ws.store, 1, np.zeros((50, 2), np.float32))
    with pytest.raises(NotFound, match="map 7 not found"):
        ds.find_clusters(map_id=7)
    with pytest.raises(InvalidInput, match="min_cluster_size: Input should be greater"):
        ds.find_clusters(min_cluster_size=1)
