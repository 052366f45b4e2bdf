"""Inference backends: the model converted to OpenVINO gives PyTorch's vectors on the real
crops; the converted model is cached, a corrupt cache is rebuilt, a failed conversion falls
back to PyTorch, a backend not installed says how to install it; auto measures both once per
model and machine and keeps the faster; int8 weights, with their cosine to fp32 reported."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ingest, run_cli

from visor.config import Settings
from visor.embedding import backends, models
from visor.embedding.backends import check_backend
from visor.embedding.cpu import cpu_flags
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
    # fp32 on both: the test is about the backends, not about a CPU's bf16 (auto picks it).
    done = workspace.dataset("ov").embed(MODEL, backend="openvino", precision="fp32", wait=True)[
        "result"
    ]
    assert done["backend"] == "openvino" and done["embedded"] == 98
    assert Path(done["backend_facts"]["file"]).is_file()
    assert (
        workspace.dataset("pt").embed(MODEL, backend="torch", precision="fp32", wait=True)[
            "result"
        ]["backend"]
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
    caplog.set_level(logging.WARNING, logger="visor.backends")
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


def test_a_model_cached_by_another_version_is_converted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each library version has its own cached file: a file another OpenVINO (or PyTorch,
    transformers) wrote is never read, the model is converted again beside it."""
    import openvino

    first = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert first.backend_facts["from_cache"] is False
    monkeypatch.setattr(openvino, "__version__", "2099.0.0-other")
    models._cache.clear()
    other = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert other.backend_facts["from_cache"] is False
    assert other.backend_facts["file"] != first.backend_facts["file"]
    assert len(list(tmp_path.glob("*.xml"))) == 2
    monkeypatch.undo()
    models._cache.clear()
    again = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert again.backend_facts["from_cache"] is True
    assert again.backend_facts["file"] == first.backend_facts["file"]


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


def test_batches_run_in_parts_in_order_and_from_two_threads(tmp_path: Path) -> None:
    """The OpenVINO runner cuts a batch into a part per stream: the rows come back in the
    batch's order, the same as one image at a time, and two threads using the model at once
    (a job and a query) each get their own vectors."""
    from concurrent.futures import ThreadPoolExecutor

    import torch

    rng = np.random.default_rng(2)
    pixels = torch.from_numpy(rng.integers(0, 255, (9, 224, 224, 3), dtype=np.uint8))
    embedder = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    alone = np.concatenate([embedder.forward(pixels[i : i + 1]).numpy() for i in range(9)])
    assert np.allclose(embedder.forward(pixels).numpy(), alone, atol=1e-4)
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda part: embedder.forward(part).numpy(), [pixels[:5]] * 6
                             + [pixels[5:]] * 6))  # fmt: skip
    for got in both[:6]:
        assert np.allclose(got, alone[:5], atol=1e-4)
    for got in both[6:]:
        assert np.allclose(got, alone[5:], atol=1e-4)


@pytest.mark.parametrize(
    "config",
    [
        {},  # DINOv2's: rescaled, then normalised by mean and std
        {"do_normalize": False},  # rescaled only
        {"do_rescale": False},  # normalised on 0-255 values
    ],
)
def test_the_compiled_model_normalises_as_pytorch_does(config: dict[str, object]) -> None:
    """OpenVINO runners take the pipeline's uint8 crops and normalise them inside the
    compiled model: the same model input as the preprocessing's own `normalize`, whatever of
    rescaling and normalising the model's preprocessing asks for."""
    import openvino as ov
    import torch

    from visor.embedding.preprocess import Preprocessing

    preprocessing = Preprocessing.from_config({**models.DINOV2_PREPROCESSING, **config})

    class Inputs(torch.nn.Module):  # what the model receives, a few values of it
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :, ::37, ::41].flatten(1)

    converted = ov.convert_model(Inputs(), example_input=torch.zeros(2, 3, 224, 224))
    run, _ = backends._compiled(ov.Core(), converted, "fp32", preprocessing)
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    expected = Inputs()(preprocessing.normalize(torch.from_numpy(pixels))).numpy()
    assert np.allclose(run(pixels), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kept", [0, -1])
def test_streams_only_where_the_hint_keeps_every_thread(kept: int) -> None:
    """The throughput hint may count physical cores only (2 vCPUs of one core): where it keeps
    fewer threads than asked, the model is compiled again as one stream of them all."""

    class Compiled:
        def __init__(self, config: dict[str, object]) -> None:
            self.config = config

        def get_property(self, name: str) -> object:
            assert name == "INFERENCE_NUM_THREADS"
            hinted = "PERFORMANCE_HINT" in self.config
            return int(str(self.config[name])) + (kept if hinted else 0)

    class Core:  # OpenVINO's, as far as compiling goes
        def __init__(self) -> None:
            self.configs: list[dict[str, object]] = []

        def compile_model(self, model: object, device: str, config: dict[str, object]) -> Compiled:
            self.configs.append(config)
            return Compiled(config)

    core = Core()
    compiled = backends._compile(core, object(), "bf16", streams=True)
    hinted = [c.get("PERFORMANCE_HINT") for c in core.configs]
    assert hinted == (["THROUGHPUT"] if kept == 0 else ["THROUGHPUT", None])
    assert compiled.config["INFERENCE_PRECISION_HINT"] == "bf16"


def test_a_failed_conversion_falls_back_to_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import openvino

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("operation not supported")

    monkeypatch.setattr(openvino, "convert_model", refuse)
    caplog.set_level(logging.WARNING, logger="visor.models")
    embedder = models.load_model(MODEL, "cpu", "fp32", "openvino", cache_dir=tmp_path)
    assert embedder.backend == "torch" and embedder.runner is None
    assert embedder.backend_facts["fallback_from"] == "openvino"
    assert "openvino conversion failed (operation not supported); using torch" in caplog.text


def test_backend_names_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_backend("auto", "cpu") == "auto"  # measured when the model loads
    assert check_backend("auto", "cuda") == "torch"
    assert check_backend(None, "cpu", "int8") == "openvino"
    with pytest.raises(InvalidInput, match="int8 runs on the openvino backend"):
        check_backend("torch", "cpu", "int8")
    with pytest.raises(InvalidInput, match="int8 runs on the CPU"):
        models.resolve_precision("int8", "cuda")
    with pytest.raises(InvalidInput, match="use one of auto, torch, openvino"):
        check_backend("tensorrt", "cpu")
    with pytest.raises(InvalidInput, match="runs on the CPU"):
        check_backend("openvino", "cuda")
    monkeypatch.setitem(sys.modules, "openvino", None)  # as where it is not installed
    with pytest.raises(InvalidInput, match="pip install openvino"):
        check_backend("openvino", "cpu")
    assert check_backend("auto", "cpu") == "torch"
    monkeypatch.delitem(sys.modules, "openvino")
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(InvalidInput, match="int8 needs nncf: pip install nncf"):
        check_backend("openvino", "cpu", "int8")


def test_auto_measures_once_and_keeps_the_faster(tmp_path: Path) -> None:
    """First use: both backends timed, the faster used, the rates kept; a kept choice is
    read back, not measured again; where torch was faster the model is not even converted."""
    first = models.load_model(MODEL, "cpu", "fp32", "auto", cache_dir=tmp_path)
    measured = first.backend_facts["auto"]
    assert measured["measured_now"] is True
    rates = measured["rates"]
    assert set(rates) == {"torch", "openvino"} and min(rates.values()) > 0
    assert first.backend == max(rates, key=rates.get)
    key = backends.choice_key(MODEL, "fp32", cpu_flags())
    kept = json.loads((tmp_path / backends.CHOICES_FILE).read_text())
    assert kept[key]["rates"] == rates and kept[key]["chosen"] == first.backend
    for winner, loser in (("openvino", "torch"), ("torch", "openvino")):
        folder = tmp_path / winner
        backends.record_choice(folder, key, {winner: 20.0, loser: 10.0})
        models._cache.clear()
        again = models.load_model(MODEL, "cpu", "fp32", "auto", cache_dir=folder)
        assert again.backend == winner
        assert again.backend_facts["auto"]["rates"] == {winner: 20.0, loser: 10.0}
        assert "measured_now" not in again.backend_facts["auto"]
        assert bool(list(folder.glob("*.xml"))) == (winner == "openvino")
    # `visor models` lists the choices made on this machine.
    home = tmp_path / "home"
    backends.record_choice(home / "compiled", key, {"torch": 6.5, "openvino": 8.5})
    listed = run_cli(home, "models", env={"VISOR_EMBED_BACKEND": "auto"})
    assert listed.returncode == 0, listed.stderr
    assert "runs on: auto (the faster of torch and openvino" in listed.stdout
    assert f"{MODEL} (fp32): openvino (measured images/s: torch 6.5, openvino 8.5)" in (
        listed.stdout
    )


def test_int8_weights_report_their_cosine_to_fp32(tmp_path: Path) -> None:
    """98 real crops through `visor embed --precision int8` on a CPU without VNNI (int8
    weights): the job says how close the int8
    vectors are to fp32's on its first batch; the stored vectors are compared here too
    (int8's closeness is reported rather than promised; here a low bar: ≥ 0.99)."""
    home = tmp_path / "home"
    for name in ("q", "f"):
        ingested = run_cli(home, "ingest", str(DATA / "classification_trees"), "--name", name)
        assert ingested.returncode == 0
    done = run_cli(
        home, "embed", "q", "--model", MODEL, "--precision", "int8", "--backend", "openvino",
        env={"VISOR_CPU_FLAGS": "avx2 fma"},  # no VNNI: int8 weights (test_int8.py: static)
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Converting traces the model: torch's and transformers' warnings stay out of sight.
    assert "Warning" not in done.stderr and "[transformers]" not in done.stderr, done.stderr
    assert "backend: openvino" in done.stdout
    assert "int8 vectors against fp32 on 32 images: cosine min 0." in done.stdout
    assert run_cli(home, "embed", "f", "--model", MODEL, "--precision", "fp32").returncode == 0
    with Workspace(Settings(home=home)) as ws:
        ids, q = ws.dataset("q").embeddings(MODEL)
        fids, f = ws.dataset("f").embeddings(MODEL)
    assert len(ids) == len(fids) == 98
    cosines = _cosines(q, f)  # same files in the same order: ingested alike
    print("int8 against fp32 on 98 crops: min", cosines.min(), "mean", cosines.mean())
    assert cosines.min() >= 0.99
    assert len(list((home / "compiled").glob("*.xml"))) == 1  # int8's own file
    refused = run_cli(home, "embed", "q", "--model", MODEL, "--precision", "int8")
    assert refused.returncode != 0  # the tests' setting is torch: int8 needs openvino
    assert "precision int8 runs on the openvino backend" in refused.stderr
