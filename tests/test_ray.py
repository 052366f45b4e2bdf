"""The embed job on a Ray cluster on this machine: the same vectors as the local job, a
worker dying mid-job, the driver killed and run again, images read from and shards staged on
S3 (the moto server on loopback). The tests that need a cluster started (and stopped) by their
own job come first; the others join one cluster the module starts, as a job joins a cluster
that is already connected."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from conftest import ingest

from visor.config import Settings
from visor.errors import InvalidInput
from visor.services import ray_embed
from visor.workspace import Workspace

pytest.importorskip("ray")

DATA = Path(__file__).parent / "data"
MODEL = "random:dinov2-tiny"


def _unique_vectors(ws: Workspace, name: str, model: str = MODEL) -> tuple[np.ndarray, np.ndarray]:
    ids, vectors = ws.dataset(name).embeddings(model)
    assert len(np.unique(ids)) == len(ids)  # no sample has two vectors
    return ids, vectors


def test_the_driver_killed_then_run_again(tmp_path: Path) -> None:
    """`visor embed --ray local` killed (driver and the cluster it started) part-way: the next
    run loads what the dead one left and embeds only what is missing."""
    home = tmp_path / "home"
    env = {**os.environ, "VISOR_HOME": str(home)}
    cli = [sys.executable, "-m", "visor"]
    root = str(DATA / "classification_trees")
    subprocess.run([*cli, "ingest", root, "--name", "c"], env=env, check=True, timeout=300)
    slow = "random:dinov2-small"  # a larger model: the run is still going when it is killed
    proc = subprocess.Popen(
        [*cli, "embed", "c", "--model", slow, "--ray", "local", "--batch-size", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # the driver and the local cluster it starts, killed together
    )
    staging = home / "staging" / "dataset-1" / "random_dinov2-small"
    deadline = time.monotonic() + 240
    while not staging.is_dir() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert staging.is_dir(), "no shard was written"
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    ws = Workspace(Settings(home=home))
    try:
        result = ws.dataset("c").embed(slow, ray="local", batch_size=8, wait=True)["result"]
        before = result["skipped_existing"] + result["recovered_from_shards"]
        assert 0 < before < 98  # the killed run had done part of the work, and only part
        assert result["embedded"] == 98 - result["skipped_existing"]
        ids, _ = _unique_vectors(ws, "c", slow)
        assert len(ids) == 98
    finally:
        ws.close()


def test_images_and_shards_on_s3(workspace: Workspace, s3: str) -> None:
    """A dataset in a bucket, embedded on Ray with the shards staged in the bucket: the
    workers read the images and write the shards there; every shard is loaded, then gone.
    The actors run the model on OpenVINO (converted once, into the job's home)."""
    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="data")
    root = DATA / "coco_roboflow_trees"
    for path in root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "data", f"trees/{path.relative_to(root)}")
    ingest(workspace, "s3://data/trees", "remote")
    job = workspace.dataset("remote").embed(
        MODEL,
        ray="local",
        batch_size=4,
        staging="s3://data/staging/trees",
        backend="openvino",
        wait=True,
    )
    result = job["result"]
    assert (result["embedded"], result["failed_count"]) == (12, 0)
    assert result["backend"] == "openvino"
    assert len(list((workspace.settings.home / "compiled").glob("*.xml"))) == 1
    assert "Contents" not in client.list_objects_v2(Bucket="data", Prefix="staging/")
    ids, _ = _unique_vectors(workspace, "remote")
    assert len(ids) == 12


def test_ray_options_checked_before_a_job(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(workspace, DATA / "coco_roboflow_trees", "t")
    ds = workspace.dataset("t")
    with pytest.raises(InvalidInput, match="--recompute runs locally"):
        ds.embed(MODEL, ray="local", recompute=True)
    monkeypatch.setitem(sys.modules, "ray", None)  # as where Ray is not installed
    with pytest.raises(InvalidInput, match=r"pip install 'visor\[ray\]'"):
        ds.embed(MODEL, ray="local")


def test_cancel_stops_the_ray_job(workspace: Workspace) -> None:
    """Cancelled once a shard is in: the job ends cancelled, the cluster it started is
    stopped, the loaded shards stay, and the next run embeds the rest."""
    import ray

    ingest(workspace, DATA / "coco_roboflow_trees", "t")
    ds = workspace.dataset("t")
    slow = "random:dinov2-small"
    job = ds.embed(slow, ray="local", batch_size=2)
    deadline = time.monotonic() + 240
    while workspace.jobs.get(job["id"])["done"] < 2:
        assert time.monotonic() < deadline
        assert workspace.jobs.get(job["id"])["state"] in ("queued", "running")
        time.sleep(0.1)
    workspace.jobs.cancel(job["id"])
    final = workspace.jobs.wait(job["id"], timeout=120)
    assert final["state"] == "cancelled"
    assert not ray.is_initialized()
    stored = len(_unique_vectors(workspace, "t", slow)[0])
    assert 2 <= stored < 12
    rest = ds.embed(slow, ray="local", batch_size=4, wait=True)["result"]
    assert rest["embedded"] == 12 - stored  # shards written as it stopped included
    assert len(_unique_vectors(workspace, "t", slow)[0]) == 12


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local cluster for the tests below, connected as a job connects. Its workers are
    told of a marker file: a worker that finds it removes it and dies mid-batch. Yields the
    marker's path (no file until a test writes one)."""
    import ray

    marker = tmp_path_factory.mktemp("ray") / "die-once"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VISOR_RAY_FAIL_ONCE", str(marker))
        assert ray_embed._connect(ray, "local")
    yield marker
    ray.shutdown()


def test_ray_gives_the_local_vectors(workspace: Workspace, cluster: Path) -> None:
    """98 real crops: Ray's vectors equal the local pipeline's (cosine ≥ 0.9999)."""
    ingest(workspace, DATA / "classification_trees", "on_ray")
    ingest(workspace, DATA / "classification_trees", "here")
    job = workspace.dataset("on_ray").embed(MODEL, ray="local", batch_size=16, wait=True)
    result = job["result"]
    assert (result["embedded"], result["failed_count"], result["skipped_existing"]) == (98, 0, 0)
    assert not list(Path(result["staging"]).glob("*.parquet"))  # every shard loaded, removed
    workspace.dataset("here").embed(MODEL, batch_size=16, wait=True)
    ids, ray_vectors = _unique_vectors(workspace, "on_ray")
    local_ids, local_vectors = _unique_vectors(workspace, "here")
    _, paths = workspace.dataset("on_ray").samples(limit=200)
    _, local_paths = workspace.dataset("here").samples(limit=200)
    by_path = {s["path"]: s["id"] for s in local_paths}
    order = {i: n for n, i in enumerate(local_ids.tolist())}
    assert len(ids) == 98
    for sample in paths:
        a = ray_vectors[np.flatnonzero(ids == sample["id"])[0]]
        b = local_vectors[order[by_path[sample["path"]]]]
        cosine = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert cosine >= 0.9999, sample["path"]
    # Again: nothing is missing, so nothing is sent.
    again = workspace.dataset("on_ray").embed(MODEL, ray="local", wait=True)["result"]
    assert (again["embedded"], again["skipped_existing"]) == (0, 98)


def test_a_worker_dies_mid_job(
    workspace: Workspace, cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model actor's process exits in the middle of its first batch: Ray restarts it and
    runs the batch again; every image gets exactly one vector. Images are read on decoding
    tasks here (as beside GPU actors), and the vectors are the local job's."""
    marker = cluster
    marker.write_text("")
    monkeypatch.setenv("VISOR_RAY_DECODE_TASKS", "1")
    ingest(workspace, DATA / "coco_roboflow_trees", "t")
    result = workspace.dataset("t").embed(MODEL, ray="local", batch_size=4, wait=True)["result"]
    assert not marker.exists()  # a worker did die
    assert (result["embedded"], result["failed_count"]) == (12, 0)
    ids, vectors = _unique_vectors(workspace, "t")
    assert len(ids) == 12
    ingest(workspace, DATA / "coco_roboflow_trees", "here")
    workspace.dataset("here").embed(MODEL, batch_size=4, wait=True)
    local_ids, local_vectors = _unique_vectors(workspace, "here")
    assert local_ids.tolist() == ids.tolist()  # the same files, numbered alike
    cosine = (vectors * local_vectors).sum(1)
    cosine /= np.linalg.norm(vectors, axis=1) * np.linalg.norm(local_vectors, axis=1)
    assert cosine.min() >= 0.9999


@pytest.mark.parametrize("decode_tasks", ["0", "1"])
def test_boxes_on_ray(
    workspace: Workspace, cluster: Path, monkeypatch: pytest.MonkeyPatch, decode_tasks: str
) -> None:
    """`--objects --ray`: the 461 boxes of the 12 real tiles, each a crop of its image, give
    the local job's box vectors, cut in the model actors or on decoding tasks."""
    monkeypatch.setenv("VISOR_RAY_DECODE_TASKS", decode_tasks)
    ingest(workspace, DATA / "coco_roboflow_trees", "on_ray")
    ingest(workspace, DATA / "coco_roboflow_trees", "here")
    ds = workspace.dataset("on_ray")
    result = ds.embed(MODEL, objects=True, ray="local", batch_size=32, wait=True)["result"]
    assert (result["boxes"], result["embedded"], result["failed_count"]) == (461, 461, 0)
    assert Path(result["staging"]).name == "random_dinov2-tiny-boxes-gt"
    workspace.dataset("here").embed(MODEL, objects=True, batch_size=32, wait=True)
    on_ray, here = ds.objects.vectors(MODEL), workspace.dataset("here").objects.vectors(MODEL)
    assert len(np.unique(on_ray.label_ids)) == len(on_ray) == 461
    assert on_ray.sample_ids.tolist() == here.sample_ids.tolist()
    a, b = on_ray.vectors, here.vectors
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() >= 0.9999
    again = ds.embed(MODEL, objects=True, ray="local", wait=True)["result"]
    assert (again["embedded"], again["skipped_existing"]) == (0, 461)
