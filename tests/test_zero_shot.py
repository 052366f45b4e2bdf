"""Zero-shot tags from a CLIP/SigLIP text tower: the likeliest label per image as one
undoable edit, the images whose class the model disagrees with (and the health row that
counts them), and what is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import visor
from visor.config import Settings
from visor.embedding.models import load_model
from visor.errors import InvalidInput
from visor.workspace import Workspace

YOLO = Path(__file__).parent / "data" / "yolo_roboflow_trees"
CLIP = "random:clip-tiny"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:  # type: ignore[misc]
    with Workspace(Settings(home=tmp_path / "home")) as workspace:
        workspace.ingest(str(YOLO), "y", wait=True)
        workspace.dataset("y").embed(CLIP, precision="fp32", wait=True)
        yield workspace


def _likeliest(ws: Workspace, labels: list[str]) -> dict[int, str]:
    """Each image's likeliest label, by hand: CLIP's softmax over the scaled cosines."""
    ids, images = ws.dataset("y").embeddings(CLIP)
    model = load_model(CLIP)
    texts = model.encode_text([f"a photo of a {label}" for label in labels])
    cos = (images / np.linalg.norm(images, axis=1, keepdims=True)) @ (
        texts / np.linalg.norm(texts, axis=1, keepdims=True)
    ).T
    return {int(i): labels[int(j)] for i, j in zip(ids, cos.argmax(axis=1), strict=True)}


def _tags(ws: Workspace) -> dict[int, list[str]]:
    table = ws.dataset("y").to_arrow()
    return {
        int(i): [t for t in tags if t.startswith("zero-shot:")]
        for i, tags in zip(
            table.column("sample_id").to_pylist(), table.column("tags").to_pylist(), strict=True
        )
    }


def test_zero_shot_tags_are_one_undoable_edit(ws: Workspace) -> None:
    ds = ws.dataset("y")
    labels = ["day", "night", "indoor", "outdoor"]
    result = ds.tag_zero_shot(labels, threshold=0.0, wait=True)["result"]
    assert result["samples"] == 7 and sum(result["tagged"].values()) == 7
    assert result["disagree"] is None and "random weights" in result["warning"]
    want = _likeliest(ws, labels)
    assert _tags(ws) == {i: [f"zero-shot:{label}"] for i, label in want.items()}
    assert ds.edits.undo()["batch"] == result["batch"]
    assert all(not t for t in _tags(ws).values())
    ds.edits.redo()
    assert _tags(ws) == {i: [f"zero-shot:{label}"] for i, label in want.items()}
    # A threshold above every probability of a 4-way softmax over near-equal scores: none.
    none = ds.tag_zero_shot(labels, threshold=0.99, prefix="sure:", wait=True)["result"]
    assert none["tagged"] == {f"sure:{label}": 0 for label in labels} and none["batch"] is None


def test_the_classes_the_model_disagrees_with(ws: Workspace) -> None:
    ds = ws.dataset("y")
    classes = sorted(ds.info()["categories"])
    result = ds.tag_zero_shot(threshold=0.0, wait=True)["result"]
    assert result["labels"] == ds.info()["categories"]
    table = ds.to_arrow()
    held = dict(
        zip(table.column("sample_id").to_pylist(), table.column("classes").to_pylist(), strict=True)
    )
    want = {
        i
        for i, label in _likeliest(ws, result["labels"]).items()
        if held[i] and label not in held[i]
    }
    assert result["disagree"] == len(want) and set(classes) >= set(result["labels"])
    shown = ds.to_arrow(visor.SampleFilter(tag="zero-shot:disagrees")).column("sample_id")
    assert set(shown.to_pylist()) == want
    rows = {r["kind"]: r for r in ds.health()["rows"]}
    assert rows["zero_shot_disagrees"]["count"] == len(want)
    assert rows["zero_shot_disagrees"]["filter"] == {"tag": "zero-shot:disagrees"}
    ds.edits.undo()
    rows = {r["kind"]: r for r in ds.health()["rows"]}
    assert rows["zero_shot_disagrees"]["count"] == 0


def test_what_zero_shot_refuses(ws: Workspace) -> None:
    ds = ws.dataset("y")
    with pytest.raises(InvalidInput, match="labels: give at least one label, none empty"):
        ds.tag_zero_shot(["day", ""])
    with pytest.raises(InvalidInput, match="'day' given more than once"):
        ds.tag_zero_shot(["day", "night,day"])
    with pytest.raises(InvalidInput, match=r"one \{\} where the label goes"):
        ds.tag_zero_shot(["day"], template="a photo")
    ds.embed("random:dinov2-tiny", precision="fp32", wait=True)
    with pytest.raises(InvalidInput, match="embeds images only"):
        ds.tag_zero_shot(["day"], model="random:dinov2-tiny")
