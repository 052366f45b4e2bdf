"""Sources: paths stay inside the root; S3 works through a real S3 API (moto's server)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import boto3
import pytest
from conftest import ingest
from PIL import Image

from visor.config import Settings
from visor.errors import SourceError
from visor.services.samples import image_bytes
from visor.sources import Source
from visor.workspace import Workspace


@pytest.mark.parametrize("bad", ["../x.jpg", "a/../../x.jpg", "/etc/passwd"])
def test_paths_outside_the_root_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SourceError):
        Source(str(tmp_path)).resolve(bad)


def test_a_file_is_not_a_dataset_root(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(SourceError, match="not a folder"):
        Source(str(tmp_path / "f.txt"))


def test_s3_dataset_is_ingested_and_served(s3: str, demo_root: Path, tmp_path: Path) -> None:
    client = boto3.client("s3", endpoint_url=s3)
    client.create_bucket(Bucket="data")
    for path in demo_root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "data", f"shapes/{path.relative_to(demo_root)}")
    ws = Workspace(Settings(home=tmp_path / "home", s3_endpoint_url=s3))
    try:
        job = ingest(ws, "s3://data/shapes")
        assert job["state"] == "done", job
        assert job["result"]["samples"] == 40 and job["result"]["format"] == "coco"
        ds = ws.dataset("ds")
        assert ds.row["root"] == "s3://data/shapes"
        thumb = ds.thumbnail_bytes(0)
        assert thumb is not None and max(Image.open(io.BytesIO(thumb)).size) <= 256
        ctx = ws.context("ds")
        data, path = image_bytes(ctx.store, ctx.source(), ctx.dataset, 0)
        assert Image.open(io.BytesIO(data)).size == (160, 120)
        with pytest.raises(SourceError, match="no such bucket or prefix"):
            ws.ingest("s3://data/missing", "other")
    finally:
        ws.close()


def test_local_symlink_inside_root_is_followed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "real.txt").write_text("x")
    os.symlink(root / "real.txt", root / "link.txt")
    assert Source(str(root)).read_bytes("link.txt") == b"x"
