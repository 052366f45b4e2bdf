"""Text → image search with CLIP/SigLIP models: the text tower's vector searched among the
images' vectors, exactly (brute-force cosine order) or through the ANN index (recall@10),
and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import visor
from visor.config import Settings
from visor.errors import InvalidInput
from visor.ops.reads import text_vector
from visor.store import embeddings as vector_rows
from visor.synthetic import clustered_vectors, write_samples
from visor.workspace import Workspace

YOLO = Path(__file__).parent / "data" / "yolo_roboflow_trees"
CLIP = "random:clip-tiny"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:  # type: ignore[misc]
    with Workspace(Settings(home=tmp_path / "home", ann_min_vectors=1000)) as workspace:
        yield workspace


def _brute_force(ids: np.ndarray, found: np.ndarray, query: np.ndarray) -> list[int]:
    unit = found / np.linalg.norm(found, axis=1, keepdims=True)
    scores = unit @ (query / np.linalg.norm(query))
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")]


@pytest.mark.parametrize("model", [CLIP, "random:siglip-tiny"])
def test_text_search_on_the_corpus_is_a_cosine_ranking(ws: Workspace, model: str) -> None:
    ws.ingest(str(YOLO), "y", wait=True)
    ds = ws.dataset("y")
    ds.embed(model, precision="fp32", wait=True)
    found = ds.similar(text="a dead tree seen from above", k=5)
    assert len(found) == 5 and all(r["path"] for r in found)
    ids, vectors = ds.embeddings(model)
    query = text_vector(model, "a dead tree seen from above")
    assert [r["sample_id"] for r in found] == _brute_force(ids, vectors, query)[:5]
    # Filters combine with it: only the train split's 4 images.
    train = ds.similar(
        text="a dead tree seen from above", k=10, filters=visor.SampleFilter(split="train")
    )
    in_train = set(ds.to_arrow(visor.SampleFilter(split="train")).column("sample_id").to_pylist())
    assert len(train) == 4 and {r["sample_id"] for r in train} == in_train
    # Another text, another order (the text tower is really used).
    other = ds.similar(text="zzzz 0123", k=7)
    assert [r["sample_id"] for r in other] == _brute_force(
        ids, vectors, text_vector(model, "zzzz 0123")
    )


def test_text_search_through_the_index(ws: Workspace) -> None:
    n = 3000
    write_samples(ws.store, n, "big")
    row = ws.dataset("big")
    vectors = clustered_vectors(n, 64, seed=7)
    vector_rows.ensure_model(ws.store, CLIP, 64)
    vector_rows.write_batch(
        ws.store, row.id, CLIP, np.arange(n), vectors, [], job_id=None, replace=False
    )
    row.build_index(CLIP, wait=True)
    assert row.index_status(CLIP)["search"] == "ann"
    recall = []
    for text in ("a knight on a light square", "two dogs", "an empty street at night"):
        found = [r["sample_id"] for r in row.similar(text=text, k=10)]
        exact = _brute_force(np.arange(n), vectors, text_vector(CLIP, text))[:10]
        recall.append(len(set(found) & set(exact)) / 10)
    assert np.mean(recall) >= 0.95, recall


def test_what_text_search_refuses(ws: Workspace) -> None:
    ws.ingest(str(YOLO), "y", wait=True)
    ds = ws.dataset("y")
    ds.embed("random:dinov2-tiny", precision="fp32", wait=True)
    with pytest.raises(InvalidInput, match=r"embeds images only: .*clip-vit-b-32"):
        ds.similar(text="a tree")
    with pytest.raises(InvalidInput, match="text: give words to search for"):
        ds.similar(text="   ", model="random:dinov2-tiny")
    with pytest.raises(InvalidInput, match="text: String should have at least 1 character"):
        ds.similar(text="")
    with pytest.raises(InvalidInput, match="a sample id or a text, one of the two"):
        ds.similar()
    with pytest.raises(InvalidInput, match="a sample id or a text, one of the two"):
        ds.similar(0, text="a tree")


def test_the_text_tower_runs_on_openvino_on_a_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a CPU the text tower is converted to OpenVINO on its first text (kept beside the
    image models, found again by the next process) and gives PyTorch's vectors; a tower that
    fails to convert, or the setting embed_backend=torch (VISOR_EMBED_BACKEND), keeps PyTorch."""
    from visor.embedding import backends, models

    def settings(home: str, backend: str = "auto") -> None:  # what the models module reads
        found = Settings(home=tmp_path / home, embed_backend=backend)
        monkeypatch.setattr("visor.config.get_settings", lambda: found)

    settings("home")
    texts = ["a dead tree", "zzzz 0123", "a photo of a healthy pine seen from above"]
    for name in (CLIP, "random:siglip-tiny"):
        models._cache.clear()
        tower = models.load_model(name, "cpu", "fp32").text
        assert tower is not None
        converted = tower.encode(texts)
        assert tower._runner is not None  # OpenVINO ran them
        files = list((tmp_path / "home" / "compiled").glob("*.xml"))
        assert any(f.name.startswith(name.replace(":", "_")) for f in files)
        settings("home", "torch")
        models._cache.clear()
        torch_tower = models.load_model(name, "cpu", "fp32").text
        assert torch_tower is not None and torch_tower.compile is None
        reference = torch_tower.encode(texts)
        settings("home")
        cosines = (converted * reference).sum(1) / (
            np.linalg.norm(converted, axis=1) * np.linalg.norm(reference, axis=1)
        )
        assert cosines.min() > 0.9999, (name, cosines)

    # A workspace with a home of its own keeps the conversion there, not in the default home.
    settings("default")
    models._cache.clear()
    with Workspace(Settings(home=tmp_path / "own")) as own:
        write_samples(own.store, 20, "v")
        ds = own.dataset("v")
        vector_rows.ensure_model(own.store, CLIP, 64)
        vectors = clustered_vectors(20, 64, seed=1)
        vector_rows.write_batch(
            own.store, ds.id, CLIP, np.arange(20), vectors, [], job_id=None, replace=False
        )
        assert len(ds.similar(text="a dead tree", k=5, model=CLIP)) == 5
    assert list((tmp_path / "own" / "compiled").glob("random_clip-tiny-*.xml"))
    assert not (tmp_path / "default" / "compiled").exists()

    def broken(*args: object) -> None:
        raise RuntimeError("no converter for this graph")

    monkeypatch.setattr(backends, "_convert_text", broken)
    settings("other")
    models._cache.clear()
    tower = models.load_model(CLIP, "cpu", "fp32").text
    assert tower is not None
    with caplog.at_level("WARNING", logger="visor.backends"):
        vectors = tower.encode(texts)
    assert vectors.shape == (3, 64) and tower._runner is None
    assert "text tower conversion failed (no converter for this graph); using torch" in caplog.text
    models._cache.clear()
