"""The embedding pipeline through the Python API: real images, a real DuckDB file, a real
DINOv2 architecture with random weights."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ingest
from PIL import Image

from visor.embedding.models import (
    DINOV2_PREPROCESSING,
    REGISTRY,
    Embedder,
    _random_model,
    load_model,
)
from visor.embedding.pipeline import ImageItem, embed_images
from visor.errors import InvalidInput
from visor.workspace import Workspace

TINY = "random:dinov2-tiny"


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A smooth random image with some noise: closer to a photo than a flat colour."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (9, 12, 3), dtype=np.uint8))
    arr = np.asarray(img.resize(size, Image.Resampling.BICUBIC)).copy()
    arr += rng.integers(0, 16, arr.shape, dtype=np.uint8)
    return Image.fromarray(arr)


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved DINOv2 (small config, random weights) with DINOv2's preprocessor config, as a
    user would have after downloading weights to a folder."""
    folder = tmp_path_factory.mktemp("dinov2-folder")
    _random_model(REGISTRY["dinov2-small"]).save_pretrained(folder)
    config = {**DINOV2_PREPROCESSING, "image_processor_type": "BitImageProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(config))
    return folder


def test_vectors_equal_the_reference_processor_and_model(model_folder: Path) -> None:
    from transformers import AutoImageProcessor, AutoModel

    embedder = load_model(str(model_folder), "cpu", "fp32")
    processor = AutoImageProcessor.from_pretrained(model_folder)
    reference = AutoModel.from_pretrained(model_folder).eval()
    # Landscape, portrait, odd sizes, smaller than the crop, and large enough for draft mode.
    sizes = [(640, 480), (480, 640), (333, 517), (200, 150), (2400, 1800)]
    items = [
        ImageItem(i, f"img{i}.jpg", lambda data=_jpeg(_photo(s, i)): data)
        for i, s in enumerate(sizes)
    ]
    got = np.concatenate([b.vectors for b in embed_images(embedder, items, batch_size=2)])
    for i, item in enumerate(items):
        inputs = processor(images=Image.open(io.BytesIO(item.read())), return_tensors="pt")
        with torch.inference_mode():
            want = reference(**inputs).last_hidden_state[:, 0].numpy()
        assert _cosine(got[i], want)[0] >= 0.9999, sizes[i]


def test_model_names_are_checked_before_anything_loads() -> None:
    with pytest.raises(InvalidInput, match="not a known model"):
        load_model("dinov2-huge")
    with pytest.raises(InvalidInput, match="unknown architecture"):
        load_model("random:resnet50")
    with pytest.raises(InvalidInput, match="CUDA is not available"):
        load_model(TINY, device="cuda")
    with pytest.raises(InvalidInput, match="fp16 is for GPUs"):
        load_model(TINY, device="cpu", precision="fp16")


def test_the_model_is_loaded_once_and_shared() -> None:
    a = load_model(TINY, "cpu", "fp32")
    assert load_model(TINY, "cpu", "fp32") is a
    assert a.dim == 64 and a.device == "cpu"
    # Random weights are seeded: a fresh build gives the same model in every process.
    fresh = _random_model(REGISTRY["dinov2-tiny"])
    for (name, p), q in zip(a.model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_bf16_vectors_match_fp32(demo_root: Path) -> None:
    files = sorted(demo_root.rglob("*.jpg"))[:4]
    items = [ImageItem(i, f.name, f.read_bytes) for i, f in enumerate(files)]
    fp32 = next(embed_images(load_model(TINY, "cpu", "fp32"), items, batch_size=4)).vectors
    bf16 = next(embed_images(load_model(TINY, "cpu", "bf16"), items, batch_size=4)).vectors
    assert _cosine(fp32, bf16).min() >= 0.999


def test_embed_stores_one_vector_per_sample_and_only_fills_gaps(
    workspace: Workspace, demo_root: Path
) -> None:
    ingest(workspace, demo_root)
    dataset = workspace.dataset("ds")
    job = dataset.embed(TINY, batch_size=8, wait=True)
    assert job["state"] == "done" and job["result"]["embedded"] == 40
    ids, vectors = dataset.embeddings(TINY)
    assert ids.tolist() == list(range(40))
    assert vectors.shape == (40, 64) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all() and np.linalg.norm(vectors, axis=1).min() > 0

    # Lose some vectors, as a killed job would: the next run embeds exactly those.
    workspace.store.cursor().execute("DELETE FROM embeddings_64 WHERE sample_id IN (3, 17, 39)")
    again = dataset.embed(TINY, wait=True)["result"]
    assert again["embedded"] == 3 and again["skipped_existing"] == 37
    ids2, vectors2 = dataset.embeddings(TINY)
    assert ids2.tolist() == list(range(40))
    np.testing.assert_allclose(vectors2, vectors, atol=1e-5)

    redo = dataset.embed(TINY, recompute=True, wait=True)["result"]
    assert redo["embedded"] == 40
    assert dataset.embeddings(TINY)[0].tolist() == list(range(40))


def test_several_models_coexist_and_status_reports_each(
    workspace: Workspace, demo_root: Path
) -> None:
    ingest(workspace, demo_root)
    dataset = workspace.dataset("ds")
    dataset.embed(TINY, wait=True)
    dataset.embed("random:dinov2-small", batch_size=20, wait=True)
    status = {m["model"]: m for m in dataset.embedding_status()["models"]}
    assert status[TINY]["dim"] == 64 and status["random:dinov2-small"]["dim"] == 384
    for row in status.values():
        assert row["vectors"] == 40 and row["complete"] and row["errors"] == 0
        assert row["last_job"]["state"] == "done"
    assert dataset.embeddings("random:dinov2-small")[1].shape == (40, 384)


def test_bad_images_are_recorded_and_odd_ones_embedded(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "odd"
    root.mkdir()
    upright = _photo((300, 200), seed=7)
    (root / "a_upright.jpg").write_bytes(_jpeg(upright))
    # Stored rotated, with the EXIF tag that turns it back: must embed like the upright one.
    exif = Image.Exif()
    exif[0x0112] = 6
    (root / "b_exif_rotated.jpg").write_bytes(
        _jpeg(upright.transpose(Image.Transpose.ROTATE_90), exif=exif)
    )
    Image.new("CMYK", (120, 90), (10, 200, 30, 0)).save(root / "c_cmyk.jpg")
    Image.fromarray(np.arange(120 * 90, dtype=np.uint16).reshape(90, 120) * 5).save(
        root / "d_16bit.png"
    )
    Image.new("P", (120, 90), 3).save(root / "e_palette.png")
    Image.new("RGBA", (120, 90), (255, 0, 0, 128)).save(root / "f_alpha.png")
    Image.new("RGB", (12_000, 8_400), (90, 120, 200)).save(root / "g_100mp.jpg", quality=50)
    for name in ("h_truncated", "i_empty", "j_text", "k_missing"):
        _photo((160, 120), seed=len(name)).save(root / f"{name}.jpg")
    ingest(workspace, root)
    # The files go bad after ingest (a disk fills, a sync half-finishes):
    good = (root / "h_truncated.jpg").read_bytes()
    (root / "h_truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "i_empty.jpg").write_bytes(b"")
    (root / "j_text.jpg").write_text("this is not an image\n")
    (root / "k_missing.jpg").unlink()

    dataset = workspace.dataset("ds")
    job = dataset.embed(TINY, batch_size=3, wait=True)
    assert job["state"] == "done"
    result = job["result"]
    assert result["embedded"] == 7 and result["failed_count"] == 4
    reasons = {e["path"]: e["reason"] for e in dataset.embedding_errors(TINY)}
    assert set(reasons) == {"h_truncated.jpg", "i_empty.jpg", "j_text.jpg", "k_missing.jpg"}
    assert "truncated" in reasons["h_truncated.jpg"]
    assert "empty file" in reasons["i_empty.jpg"]
    assert "not an image" in reasons["j_text.jpg"]
    assert "not found" in reasons["k_missing.jpg"]
    assert all(path in reason for path, reason in reasons.items())
    row = dataset.embedding_status()["models"][0]
    assert row["errors"] == 4 and row["vectors"] == 7 and row["complete"]

    ids, vectors = dataset.embeddings(TINY)
    by_name = {s["filename"]: s["id"] for s in dataset.samples(limit=20)[1]}
    v = dict(zip(ids.tolist(), vectors, strict=True))
    assert _cosine(v[by_name["a_upright.jpg"]], v[by_name["b_exif_rotated.jpg"]])[0] > 0.99

    # Fixed files are picked up by the next run; the old errors go.
    shutil.copy(root / "a_upright.jpg", root / "k_missing.jpg")
    rerun = dataset.embed(TINY, wait=True)["result"]
    assert rerun["embedded"] == 1 and rerun["failed_count"] == 3
    assert len(dataset.embedding_errors(TINY)) == 3


def test_cancel_stops_within_a_batch_and_keeps_finished_batches(
    workspace: Workspace, demo_root: Path
) -> None:
    ingest(workspace, demo_root)
    dataset = workspace.dataset("ds")
    job = dataset.embed("random:dinov2-small", batch_size=4, workers=1)
    deadline = time.monotonic() + 120
    while workspace.jobs.get(job["id"])["done"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workspace.jobs.cancel(job["id"])
    final = workspace.jobs.wait(job["id"], timeout=60)
    assert final["state"] == "cancelled"
    stored = len(dataset.embeddings("random:dinov2-small")[0])
    assert stored % 4 == 0 and 4 <= stored < 40
    assert stored == final["done"]
    rest = dataset.embed("random:dinov2-small", batch_size=8, wait=True)["result"]
    assert rest["embedded"] == 40 - stored
    assert dataset.embeddings("random:dinov2-small")[0].tolist() == list(range(40))


class _FailsAbove(torch.nn.Module):
    """A model that runs out of memory on batches larger than `limit`, like a full GPU."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.sizes: list[int] = []

    def forward(self, pixel_values: torch.Tensor):  # type: ignore[no-untyped-def]
        self.sizes.append(len(pixel_values))
        if len(pixel_values) > self.limit:
            raise torch.OutOfMemoryError("out of memory (test)")
        return self.inner(pixel_values)


def test_out_of_memory_halves_the_batch_and_goes_on(demo_root: Path) -> None:
    plain = load_model(TINY, "cpu", "fp32")
    flaky = _FailsAbove(plain.model, limit=3)
    embedder = Embedder(TINY, 64, "cpu", "fp32", flaky, plain.preprocessing)
    files = sorted(demo_root.rglob("*.jpg"))[:10]
    items = [ImageItem(i, f.name, f.read_bytes) for i, f in enumerate(files)]
    got = np.concatenate([b.vectors for b in embed_images(embedder, items, batch_size=8)])
    want = np.concatenate([b.vectors for b in embed_images(plain, items, batch_size=8)])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # 8 and then 4 fail; from then on no batch larger than what worked is tried.
    assert flaky.sizes[:2] == [8, 4] and max(flaky.sizes[2:]) <= 3


def test_cpu_has_bf16_reads_injected_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from visor.embedding.cpu import cpu_flags, cpu_has_bf16

    assert not cpu_has_bf16({"avx2", "fma"})
    assert cpu_has_bf16({"avx2", "avx512_bf16"}) and cpu_has_bf16({"amx_bf16"})
    monkeypatch.setenv("VISOR_CPU_FLAGS", "sse2 avx2")
    assert cpu_flags() == {"sse2", "avx2"} and not cpu_has_bf16()
    monkeypatch.setenv("VISOR_CPU_FLAGS", "avx512_bf16")
    assert cpu_has_bf16()
