"""Static int8 on CPUs with int8 dot products: calibrated on the dataset's own first images,
cached by its calibration set, and chosen by auto only when the guard (cosine to fp32 on every
calibration image, top-10 neighbours kept) passes and it runs faster. The CPU's flags are
injected (`VISOR_CPU_FLAGS`) so each branch runs on any machine; OpenVINO emulates int8 where
the CPU lacks VNNI, so the vectors are checked everywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ingest, run_cli

from visor.embedding import backends, int8, models
from visor.embedding.cpu import cpu_flags, cpu_has_bf16, cpu_has_int8
from visor.workspace import Workspace

pytest.importorskip("openvino")
pytest.importorskip("nncf")

DATA = Path(__file__).parent / "data"
SMALL = "random:dinov2-small"  # random weights on which the guard passes (neighbours ~98%)
TINY = "random:dinov2-tiny"
AVX2 = "sse4_2 avx avx2 fma"
VNNI = "sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni"
AMX = "avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
AMX_FP32 = "avx512f avx512_vnni amx_tile amx_int8"  # int8 tiles, no bf16: the float is fp32


@pytest.fixture(autouse=True)
def fresh_models() -> None:
    models._cache.clear()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_the_cpu_flags_choose_the_kind_of_int8(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not cpu_has_int8(AVX2.split()) and not cpu_has_bf16(AVX2.split())
    assert cpu_has_int8(VNNI.split()) and not cpu_has_bf16(VNNI.split())
    assert cpu_has_int8(AMX.split()) and cpu_has_bf16(AMX.split())
    assert cpu_has_int8(["avx2", "avx_vnni"])  # Alder Lake and later desktop cores
    for flags, possible in ((AVX2, False), (VNNI, True), (AMX, True)):
        monkeypatch.setenv("VISOR_CPU_FLAGS", flags)
        assert models._int8_possible("cpu", "auto") is possible
        assert models._int8_possible("cpu", "openvino") is possible
        assert not models._int8_possible("cpu", "torch")  # torch asked for: no OpenVINO
        assert not models._int8_possible("cuda", "auto")
    # auto's float precision follows bf16: fp32 on the VNNI CPU, bf16 on the AMX one
    monkeypatch.setenv("VISOR_CPU_FLAGS", VNNI)
    assert models.resolve_precision(None, "cpu") == "fp32"
    monkeypatch.setenv("VISOR_CPU_FLAGS", AMX)
    assert models.resolve_precision(None, "cpu") == "bf16"


def test_asked_int8_is_static_with_vnni_and_int8_weights_without(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """98 real photos: on a VNNI CPU `precision="int8"` calibrates on the dataset's first
    64 and says how close it is; on an AVX2-only CPU it stores int8 weights and says
    why; a second run finds the calibrated model in the cache (same images, same digest),
    and a cached file without its measurements is made again."""
    ingest(workspace, DATA / "classification_trees", "q")
    ds = workspace.dataset("q")
    monkeypatch.setenv("VISOR_CPU_FLAGS", AVX2)
    weights = ds.embed(TINY, precision="int8", backend="openvino", wait=True)["result"]
    facts = weights["backend_facts"]
    assert weights["precision"] == "int8" and facts["quantization"] == "weights"
    assert facts["int8_note"] == "this CPU has no int8 dot products (VNNI, AMX): int8 weights only"
    assert facts["cosine_to_fp32"]["min"] >= 0.99
    monkeypatch.setenv("VISOR_CPU_FLAGS", VNNI)
    models._cache.clear()
    static = ds.embed(TINY, precision="int8", backend="openvino", recompute=True, wait=True)
    facts = static["result"]["backend_facts"]
    assert facts["quantization"] == "static" and facts["from_cache"] is False
    guard = facts["int8"]
    assert guard["images"] == 64 and guard["k"] == 10
    # Measured, not assumed: where the host has no VNNI (the flags above are injected),
    # OpenVINO runs int8 on AVX2's saturating 16-bit sums, further from fp32 (this tiny
    # random model: 0.9867 on an AVX2-only EPYC, above 0.99 with VNNI).
    assert 0.95 <= guard["cosine_min"] <= guard["cosine_median"] <= 1
    assert 0 < guard["neighbours"] <= 1
    assert "int8_note" not in facts and "cosine_to_fp32" not in facts
    _, static_vectors = ds.embeddings(TINY)
    models._cache.clear()
    again = ds.embed(TINY, precision="int8", backend="openvino", recompute=True, wait=True)
    assert again["result"]["backend_facts"]["from_cache"] is True
    assert again["result"]["backend_facts"]["file"] == facts["file"]
    _, again_vectors = ds.embeddings(TINY)
    assert np.array_equal(again_vectors, static_vectors)
    notes_file = Path(facts["file"]).with_suffix(".json")
    notes = json.loads(notes_file.read_text())
    del notes["int8"]
    notes_file.write_text(json.dumps(notes))
    models._cache.clear()
    rebuilt = ds.embed(TINY, precision="int8", backend="openvino", recompute=True, wait=True)
    assert rebuilt["result"]["backend_facts"]["from_cache"] is False
    assert rebuilt["result"]["backend_facts"]["int8"] == guard


def _first_trees(folder: Path, count: int) -> Path:
    """The first `count` photos of the classification corpus (by path), as a dataset of their
    own: fewer images to embed four times over with dinov2-small."""
    source = DATA / "classification_trees"
    for path in sorted(p for p in source.rglob("*.jpg"))[:count]:
        copy = folder / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    return folder


def test_auto_uses_static_int8_only_where_it_keeps_the_answers(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Precision auto on a VNNI CPU: static int8 where the guard passes and it is faster (the
    rates are recorded beforehand, so the choice doesn't hang on this machine's speed); the
    float model, with the reason, where it is slower or where the guard fails. On 40 photos,
    calibrated on the first 32 (the fewest it calibrates on): the guard as strict as ever."""
    monkeypatch.setattr(int8, "CALIBRATION_IMAGES", int8.MIN_CALIBRATION)
    trees = _first_trees(tmp_path / "trees", 40)
    ingest(workspace, trees, "q")
    ingest(workspace, trees, "f")
    monkeypatch.setenv("VISOR_CPU_FLAGS", VNNI)
    folder = workspace.settings.home / "compiled"
    key = backends.choice_key(SMALL, "int8 or fp32", cpu_flags())
    backends.record_choice(folder, key, {"openvino int8": 40.0, "openvino fp32": 14.0})
    ds = workspace.dataset("q")
    conversions: list[str] = []
    convert = backends._convert

    def counted(*args: object) -> object:
        conversions.append("converted")
        return convert(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(backends, "_convert", counted)
    done = ds.embed(SMALL, backend="openvino", wait=True)["result"]
    assert done["precision"] == "int8" and done["backend"] == "openvino"
    guard = done["backend_facts"]["int8"]
    assert guard["used"] is True and guard["kept"] is True and guard["images"] == 32
    # Made from the float choice's conversion (read, not made again), measured against its
    # vectors.
    assert conversions == ["converted"] and guard["against"] == "openvino fp32"
    assert guard["cosine_min"] >= int8.MIN_COSINE and guard["neighbours"] >= int8.MIN_NEIGHBOURS
    # The stored vectors against PyTorch fp32's: what the guard measured on the same images.
    workspace.dataset("f").embed(SMALL, backend="torch", precision="fp32", wait=True)
    _, q = ds.embeddings(SMALL)
    _, f = workspace.dataset("f").embeddings(SMALL)
    assert _cosines(q, f).min() >= int8.MIN_COSINE  # on every image, calibrated on or not
    first = slice(int8.CALIBRATION_IMAGES)  # the calibration images: the first by sample id
    assert abs(_cosines(q[first], f[first]).min() - guard["cosine_min"]) < 2e-4
    unit = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    kept = int8.neighbour_share(unit(q[first]), unit(f[first]), 10)
    assert abs(kept - guard["neighbours"]) < 0.02

    # Slower here: the float model, and why.
    backends.record_choice(folder, key, {"openvino int8": 10.0, "openvino fp32": 14.0})
    models._cache.clear()
    slower = ds.embed(SMALL, backend="openvino", recompute=True, wait=True)["result"]
    assert slower["precision"] == "fp32"
    assert slower["backend_facts"]["int8"]["used"] is False
    assert slower["backend_facts"]["int8"]["reason"] == "no faster than openvino fp32"
    # A little faster is not enough to take vectors a little off the float ones.
    backends.record_choice(folder, key, {"openvino int8": 15.0, "openvino fp32": 14.0})
    models._cache.clear()
    tie = ds.embed(SMALL, backend="openvino", recompute=True, wait=True)["result"]
    assert tie["precision"] == "fp32"
    assert tie["backend_facts"]["int8"]["reason"] == (
        "only 1.07x as fast as openvino fp32 (15 against 14 images/s; int8 is used from 1.1x)"
    )

    # A guard that fails: the float model, the measured numbers and the reason.
    backends.record_choice(folder, key, {"openvino int8": 40.0, "openvino fp32": 14.0})
    monkeypatch.setattr(int8, "MIN_COSINE", 0.99999)
    models._cache.clear()
    refused = ds.embed(SMALL, backend="openvino", recompute=True, wait=True)["result"]
    assert refused["precision"] == "fp32"
    facts = refused["backend_facts"]["int8"]
    assert facts["used"] is False and facts["kept"] is False
    reason = f"cosine to openvino fp32 {guard['cosine_min']} < 0.99999 on some image"
    assert facts["reason"] == reason
    _, fallback = ds.embeddings(SMALL)
    assert _cosines(fallback, f).min() > 0.9999  # fp32 again

    # Asked for fp32: int8 is not even considered.
    models._cache.clear()
    asked = ds.embed(SMALL, backend="openvino", precision="fp32", recompute=True, wait=True)
    assert "int8" not in asked["result"]["backend_facts"]


def test_auto_does_not_make_int8_that_cannot_pay_for_itself(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where this machine's record says that making static int8 took longer than it would
    save on the job's images, the float choice runs at once and says why; where it would pay,
    int8 is made and what making it took is recorded; once made for a calibration set, it is
    used whatever the job's size. (What is weighed here is the time, not the guard: the tiny
    model, its guard loosened to pass.)"""
    ingest(workspace, DATA / "classification_trees", "q")
    monkeypatch.setenv("VISOR_CPU_FLAGS", VNNI)
    monkeypatch.setattr(int8, "MIN_COSINE", 0.9)
    monkeypatch.setattr(int8, "MIN_NEIGHBOURS", 0.5)
    folder = workspace.settings.home / "compiled"
    key = backends.choice_key(TINY, "int8 or fp32", cpu_flags())
    rates = {"openvino int8": 40.0, "openvino fp32": 14.0}
    backends.record_choice(folder, key, rates, making_s=60.0)
    ds = workspace.dataset("q")
    done = ds.embed(TINY, backend="openvino", wait=True)["result"]
    assert done["precision"] == "fp32" and done["embedded"] == 98
    facts = done["backend_facts"]["int8"]
    saves = 98 * (1 / 14.0 - 1 / 40.0)  # 4.55 s on the 98 images
    assert facts == {
        "used": False,
        "reason": f"it would save {saves:.1f} s on 98 images (40.0 against 14.0 images/s) "
        "and making it took 60.0 s here",
        "unpaid": True,
        "saves_s": round(saves, 2),
        "making_s": 60.0,
    }
    assert backends.static_int8_models(folder) == []  # nothing made
    # Cheap to make but barely faster: not made either, since it would not be used.
    backends.record_choice(
        folder, key, {"openvino int8": 15.0, "openvino fp32": 14.0}, making_s=0.001
    )
    models._cache.clear()
    tie = ds.embed(TINY, backend="openvino", recompute=True, wait=True)["result"]
    assert tie["precision"] == "fp32" and tie["backend_facts"]["int8"]["unpaid"] is True
    assert tie["backend_facts"]["int8"]["reason"].startswith("only 1.07x as fast")
    assert backends.static_int8_models(folder) == []
    assert backends.recorded_choices(folder)[key]["chosen"] == "openvino fp32"  # the file too
    listed = run_cli(workspace.settings.home, "models", env={"VISOR_CPU_FLAGS": VNNI})
    ran = f"{TINY} (int8 or fp32): openvino fp32 (measured images/s: openvino int8 15.0, "
    assert ran in listed.stdout, listed.stdout

    # Cheap to make here: made and used, and the seconds it took replace the record's.
    backends.record_choice(folder, key, rates, making_s=0.001)
    made = ds.embed(TINY, backend="openvino", recompute=True, wait=True)["result"]
    assert made["precision"] == "int8" and made["backend_facts"]["int8"]["used"] is True
    recorded = backends.recorded_choices(folder)[key]
    assert recorded["making_s"] == made["backend_facts"]["seconds"] > 0.001
    assert recorded["rates"] == rates
    listed = run_cli(workspace.settings.home, "models", env={"VISOR_CPU_FLAGS": VNNI})
    assert f"making int8 took {recorded['making_s']} s" in listed.stdout, listed.stdout

    # Made for this calibration set: used again, even where making it would not pay.
    backends.record_choice(folder, key, rates, making_s=60.0)
    models._cache.clear()
    again = ds.embed(TINY, backend="openvino", recompute=True, wait=True)["result"]
    assert again["precision"] == "int8" and again["backend_facts"]["from_cache"] is True


@pytest.mark.parametrize(
    ("flags", "precision", "ceiling"), [(VNNI, "fp32", 4), (AMX, "bf16", 2), (AMX_FP32, "fp32", 32)]
)
def test_int8_is_not_made_where_no_cpu_could_make_it_pay(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, flags: str, precision: str, ceiling: int
) -> None:
    """Nothing recorded on this machine yet: making int8 runs the model twice over the 64
    calibration images, and int8 is at most 4x fp32 (VNNI), 2x bf16 or 32x fp32 (AMX) a
    cycle, so on the corpus's 98 photos it can't pay for itself on any such CPU: the float
    choice, at once, with why; nothing made, and the next job weighs again."""
    ingest(workspace, DATA / "classification_trees", "q")
    monkeypatch.setenv("VISOR_CPU_FLAGS", flags)
    ds = workspace.dataset("q")
    done = ds.embed(TINY, backend="openvino", wait=True)["result"]
    assert done["precision"] == precision and done["embedded"] == 98
    float_name = f"openvino {precision}"
    assert done["backend_facts"]["int8"] == {
        "used": False,
        "reason": "it can't pay for itself on 98 images: making it runs the model twice over "
        f"64 images in f32, and int8 runs at most {ceiling}x as fast as {float_name}",
        "unpaid": True,
    }
    folder = workspace.settings.home / "compiled"
    assert backends.static_int8_models(folder) == []
    assert not any(v.backend_facts.get("int8", {}).get("unpaid") for v in models._cache.values())


def test_a_tiny_dataset_is_not_calibrated(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COCO corpus (12 images) is too few to calibrate on: auto keeps the float model and
    says why; int8 asked for stores int8 weights with the same reason."""
    monkeypatch.setenv("VISOR_CPU_FLAGS", VNNI)
    ingest(workspace, DATA / "coco_roboflow_trees", "small")
    ds = workspace.dataset("small")
    reason = "static int8 needs 32 readable images to calibrate on; this dataset has 12"
    done = ds.embed(TINY, backend="openvino", wait=True)["result"]
    assert done["precision"] == "fp32" and done["embedded"] == 12
    assert done["backend_facts"]["int8"] == {"used": False, "reason": reason}
    models._cache.clear()
    asked = ds.embed(TINY, backend="openvino", precision="int8", recompute=True, wait=True)
    facts = asked["result"]["backend_facts"]
    assert facts["quantization"] == "weights" and facts["int8_note"] == reason


def test_the_cli_says_which_int8_ran(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ingested = run_cli(home, "ingest", str(DATA / "classification_trees"), "--name", "q")
    assert ingested.returncode == 0
    vnni = {"VISOR_CPU_FLAGS": VNNI}
    done = run_cli(
        home, "embed", "q", "--model", TINY, "--precision", "int8", "--backend", "openvino",
        env=vnni,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(384-d" not in done.stdout and "cpu, int8)" in done.stdout
    assert "static int8 as asked" in done.stdout
    assert "on 64 of the dataset's images, int8 against fp32: cosine min 0.9" in done.stdout
    assert "Warning" not in done.stderr, done.stderr
    listed = run_cli(home, "models", env=vnni)
    assert "int8 on this CPU: static, calibrated on the dataset (avx512_vnni)" in listed.stdout
    assert (
        f"{TINY} static int8, on 64 calibration images, against fp32: cosine min 0.9"
        in listed.stdout
    )
    plain = run_cli(home, "models", env={"VISOR_CPU_FLAGS": AVX2})
    assert "int8 on this CPU: int8 weights only (no VNNI or AMX" in plain.stdout
