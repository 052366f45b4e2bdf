"""Inference backends: the model converted to OpenVINO gives PyTorch's vectors on the real
crops; the converted model is cached, a corrupt cache is rebuilt, a failed conversion falls
back to PyTorch, a backend not installed says how to install it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ingest

from visor.embedding import models
from visor.embedding.backends import check_backend
from visor.errors import InvalidInput
from visor.workspace import Workspace

pytest.importorskip("openvino")

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"


@pytest.fixture(autouse=True)
def fresh_models() -> None:
    models._cache.clear()  # each test converts (or reads its cache) itself


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _top10(vectors: np.ndarray) -> np.ndarray:
    unit = vectors - vectors.mean(0)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1)[:, :10]


def test_openvino_gives_the_torch_vectors(workspace: Workspace) -> None:
    """98 real crops embedded by the job on each backend: cosine ≥ 0.999 per image, and each
    image's 10 nearest neighbours the same in ≥ 95% of places."""
    ingest(workspace, DATA / "classification_trees", "ov")
    ingest(workspace, DATA / "classification_trees", "pt")
    done = workspace.dataset("ov").embed(MODEL, backend="openvino", wait=True)["result"]
    assert done["backend"] == "openvino" and done["embedded"] == 98
    assert Path(done["backend_facts"]["file"]).is_file()
    assert (
        workspace.dataset("pt").embed(MODEL, backend="torch", wait=True)["result"]["backend"]
        == "torch"
    )
    _, ov_vectors = workspace.dataset("ov").embeddings(MODEL)
    _, pt_vectors = workspace.dataset("pt").embeddings(MODEL)
    assert _cosines(ov_vectors, pt_vectors).min() >= 0.999
    same = (_top10(ov_vectors) == _top10(pt_vectors)).mean()
    assert same >= 0.95


def test_the_converted_model_is_cached_and_a_corrupt_one_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert first.backend == "openvino" and first.backend_facts["from_cache"] is False
    pixels = np.random.default_rng(0).integers(0, 255, (4, 224, 224, 3), dtype=np.uint8)
    import torch

    expected = first.forward(torch.from_numpy(pixels)).numpy()
    models._cache.clear()
    again = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert again.backend_facts["from_cache"] is True
    assert np.allclose(again.forward(torch.from_numpy(pixels)).numpy(), expected, atol=1e-5)
    (xml,) = tmp_path.glob("*.xml")
    xml.write_text("<net truncated")  # as a crash mid-write of an older version would leave
    models._cache.clear()
    rebuilt = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert rebuilt.backend_facts["from_cache"] is False
    assert "converting again" in caplog.text
    assert np.allclose(rebuilt.forward(torch.from_numpy(pixels)).numpy(), expected, atol=1e-5)


def test_bf16_asked_of_openvino(tmp_path: Path) -> None:
    """bf16 runs in bf16 where the CPU has it, in f32 elsewhere (the result says which);
    either way the vectors are PyTorch fp32's to cosine ≥ 0.999."""
    import torch

    pixels = torch.from_numpy(
        np.random.default_rng(1).integers(0, 255, (8, 224, 224, 3), dtype=np.uint8)
    )
    reference = models.load_model(MODEL, "cpu", "fp32", "torch").forward(pixels).numpy()
    embedder = models.load_model(MODEL, "cpu", "bf16", "openvino", cache_dir=tmp_path)
    assert embedder.backend_facts["inference_precision"] in ("bf16", "f32")
    assert _cosines(embedder.forward(pixels).numpy(), reference).min() >= 0.999


def test_a_failed_conversion_falls_back_to_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import openvino

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("operation not supported")

    monkeypatch.setattr(openvino, "convert_model", refuse)
    embedder = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert embedder.backend == "torch" and embedder.runner is None
    assert embedder.backend_facts["fallback_from"] == "openvino"
    assert "openvino conversion failed (operation not supported); using torch" in caplog.text


def test_backend_names_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_backend("auto", "cpu") == "openvino"
    assert check_backend("auto", "cuda") == "torch"
    with pytest.raises(InvalidInput, match="use one of auto, torch, openvino"):
        check_backend("tensorrt", "cpu")
    with pytest.raises(InvalidInput, match="runs on the CPU"):
        check_backend("openvino", "cuda")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as where it is not installed
    with pytest.raises(InvalidInput, match="pip install openvino"):
        check_backend("openvino", "cpu")
    assert check_backend("auto", "cpu") == "torch"
