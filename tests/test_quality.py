"""Image quality on real photos with planted problems: every planted issue found, flags that
agree with cleanvision's, the filter, the job (resumable), the CLI and HTTP."""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import Server, ingest, run_cli, wait_job
from PIL import Image, ImageEnhance, ImageFilter
from playwright.sync_api import Browser, expect

from visor.media.images import decode, pixels
from visor.quality.images import ISSUES, ImageStats, image_stats, issues
from visor.store.samples import SampleFilter
from visor.workspace import Workspace

DATA = Path(__file__).parent / "data"
# Planted on the COCO corpus's 12 aerial tiles (760x500), by tile: what was done.
PLANTED = {
    0: ("dark", lambda im: ImageEnhance.Brightness(im).enhance(0.12)),
    # Out of focus and dim: cleanvision's edge measure keeps the image's border pixels, so
    # a blurred bright photo still reads as sharp by its definition (and so by ours).
    1: (
        "blurry",
        lambda im: ImageEnhance.Brightness(im.filter(ImageFilter.GaussianBlur(12))).enhance(0.8),
    ),
    2: ("grayscale", lambda im: im.convert("L")),  # stored with one channel
    3: ("grayscale", lambda im: im.convert("L").convert("RGB")),  # grey, stored as RGB
    4: ("light", lambda im: ImageEnhance.Brightness(im).enhance(6.0)),
    5: ("tiny", lambda im: im.resize((24, 16))),
    6: ("odd_aspect_ratio", lambda im: im.crop((0, 0, 760, 120))),
    7: ("low_contrast", lambda im: ImageEnhance.Contrast(im).enhance(0.08)),
}


def planted_folder(root: Path) -> Path:
    tiles = sorted((DATA / "coco_roboflow_trees").rglob("*.jpg"))
    assert len(tiles) == 12
    root.mkdir(parents=True, exist_ok=True)
    for i, tile in enumerate(tiles):
        image = Image.open(tile).convert("RGB")
        if i in PLANTED:
            image = PLANTED[i][1](image)
        image.save(root / f"tile_{i:02d}.png")
    for photo in sorted((DATA / "labelimg_trees").glob("*.png")):
        Image.open(photo).save(root / photo.name)
    return root


def test_every_planted_issue_is_found_and_only_the_dataset_own_shapes(
    workspace: Workspace, tmp_path: Path
) -> None:
    ingest(workspace, planted_folder(tmp_path / "planted"), "planted")
    ds = workspace.dataset("planted")
    job = ds.compute_quality(wait=True)
    assert job["result"]["measured"] == 15 and job["result"]["failed_count"] == 0
    counts = ", ".join(f"{n} {issue}" for issue, n in job["result"]["issues"].items() if n)
    assert job["message"] == f"15 images measured: {counts}"  # as visor jobs lists it
    assert "1 dark" in counts and "1 tiny" in counts and "2 grayscale" in counts
    paths = {s["id"]: s["path"] for s in ds.samples(limit=100)[1]}
    for issue in {name for name, _ in PLANTED.values()}:
        _, found = ds.samples(SampleFilter(quality_issue=issue), limit=100)
        names = {paths[s["id"]] for s in found}
        wanted = {f"tile_{i:02d}.png" for i, (name, _) in PLANTED.items() if name == issue}
        assert wanted <= names, (issue, names)
    report = {r["issue"]: r for r in ds.quality()["issues"]}
    assert set(report) == set(ISSUES)
    assert report["grayscale"]["count"] == 2  # both planted, stored as one channel or three
    assert report["tiny"]["count"] == 1 and report["dark"]["count"] == 1
    assert report["dark"]["share"] == round(1 / 15, 4)
    assert paths[report["dark"]["examples"][0]] == "tile_00.png"
    # Nothing measured twice: a second job has nothing left to read.
    again = ds.compute_quality(wait=True)["result"]
    assert again["measured"] == 15
    assert workspace.store.query_one("SELECT count(*) FROM image_quality")[0] == 15


def test_flags_agree_with_cleanvision(tmp_path: Path) -> None:
    """On the corpus's 98 tree crops and the planted tiles: ≥ 95% agreement per issue type
    (grayscale compared on files stored with one channel, cleanvision's definition)."""
    from cleanvision import Imagelab

    folder = planted_folder(tmp_path / "planted")
    files = sorted(str(p) for p in folder.glob("*.png") if p.name != "tile_03.png")
    files += sorted(str(p) for p in (DATA / "classification_trees").rglob("*.jpg"))
    assert len(files) == 14 + 98
    stats = [image_stats(decode(Path(f).read_bytes(), f)) for f in files]
    ours = issues({n: np.array(v) for n, v in ImageStats.columns(stats).items()})
    kinds = [
        "dark",
        "light",
        "blurry",
        "low_information",
        "grayscale",
        "odd_aspect_ratio",
        "odd_size",
    ]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lab = Imagelab(filepaths=files)
        lab.find_issues({k: {} for k in kinds})
    for kind in kinds:
        theirs = lab.issues[f"is_{kind}_issue"].to_numpy()
        agreement = float((ours[kind] == theirs).mean())
        assert agreement >= 0.95, (kind, agreement)
    assert ours["dark"].sum() >= 1 and ours["blurry"].sum() >= 1  # the test can fail


def test_unreadable_images_are_reported_and_the_rest_measured(
    workspace: Workspace, tmp_path: Path
) -> None:
    folder = planted_folder(tmp_path / "planted")
    ingest(workspace, folder, "planted")
    (folder / "tile_08.png").write_bytes(b"not a picture any more")
    result = workspace.dataset("planted").compute_quality(wait=True)["result"]
    assert result["measured"] == 14 and result["failed_count"] == 1
    assert "tile_08.png" in result["failed"][0]["reason"]


def test_quality_from_the_cli_over_http_and_in_the_ui(tmp_path: Path, browser: Browser) -> None:
    home = tmp_path / "home"
    folder = planted_folder(tmp_path / "planted")
    assert run_cli(home, "ingest", str(folder), "--name", "p").returncode == 0
    done = run_cli(home, "quality", "p")
    assert done.returncode == 0, done.stderr
    assert "15 images measured: " in done.stdout
    assert "dark" in done.stdout and "(6.7%)" in done.stdout
    server = Server(home).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers) as client:
            job = client.post("/api/datasets/p/quality")
            assert job.status_code == 202
            assert wait_job(client, job.json()["id"])["state"] == "done"
            report = client.get("/api/datasets/p/quality").json()
            assert report["measured"] == 15
            page = client.get("/api/datasets/p/samples", params={"quality": "tiny"}).json()
            assert [s["filename"] for s in page["items"]] == ["tile_05.png"]
        ui = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US").new_page()
        ui.goto(f"{server.url}/?dataset=p")
        expect(ui.get_by_test_id("count")).to_have_text("15 samples")
        ui.get_by_label("image quality").select_option("grayscale")
        expect(ui.get_by_test_id("count")).to_have_text("2 samples")
        assert "quality=grayscale" in ui.url
        ui.context.close()
    finally:
        server.stop()
    with pytest.raises(AssertionError):  # the filter really filters
        assert page["total"] == 15


def test_the_embed_job_measures_quality_from_its_own_decode(
    workspace: Workspace, tmp_path: Path
) -> None:
    ingest(workspace, planted_folder(tmp_path / "planted"), "planted")
    ds = workspace.dataset("planted")
    ds.embed("random:dinov2-tiny", precision="fp32", batch_size=8, quality=False, wait=True)
    assert ds.quality()["measured"] == 0
    job = ds.embed("random:dinov2-tiny", precision="fp32", batch_size=8, recompute=True, wait=True)
    measured = job["result"]["quality"]
    assert measured["measured"] == 15 and measured["measured_now"] == 15
    # Measured once: a later job (here --recompute) decodes them again but leaves them be.
    again = ds.embed(
        "random:dinov2-tiny", precision="fp32", batch_size=8, recompute=True, wait=True
    )
    assert again["result"]["quality"] == {**measured, "measured_now": 0}
    by_path = {s["id"]: s["path"] for s in ds.samples(limit=100)[1]}
    for i, (issue, _) in PLANTED.items():
        _, found = ds.samples(SampleFilter(quality_issue=issue), limit=100)
        assert f"tile_{i:02d}.png" in {by_path[s["id"]] for s in found}, issue
    # The quality job then has nothing left to read.
    assert ds.compute_quality(wait=True)["result"]["measured"] == 15


def blurred_photos(root: Path) -> dict[str, tuple[float, bool]]:
    """The corpus's real photos (the COCO tiles, the labelImg and YOLO pictures), each as it
    is and blurred by a Gaussian of radius 1%, 2% and 4% of its short side; and one tile
    enlarged to 2048 px wide, sharp and blurred by 12 px (0.9%). By file: radius, blurred."""
    root.mkdir(parents=True, exist_ok=True)
    photos = sorted((DATA / "coco_roboflow_trees").rglob("*.jpg"))
    photos += sorted((DATA / "labelimg_trees").glob("*.png"))
    photos += sorted((DATA / "yolo_roboflow_trees").rglob("*.jpg"))
    planted: dict[str, tuple[float, bool]] = {}
    for i, path in enumerate(photos):
        image = Image.open(path).convert("RGB")
        image.save(root / f"p{i:02d}.png")
        planted[f"p{i:02d}.png"] = (0.0, False)
        for share in (0.01, 0.02, 0.04):
            radius = share * min(image.size)
            image.filter(ImageFilter.GaussianBlur(radius)).save(root / f"p{i:02d}_{share}.png")
            planted[f"p{i:02d}_{share}.png"] = (radius, True)
    big = Image.open(photos[0]).convert("RGB").resize((2048, 1347), Image.Resampling.LANCZOS)
    big.save(root / "big.png")
    big.filter(ImageFilter.GaussianBlur(12)).save(root / "big_blurred.png")
    planted |= {"big.png": (0.0, False), "big_blurred.png": (12.0, True)}
    return planted


def test_blur_a_person_sees_is_found_at_any_size(tmp_path: Path) -> None:
    """Every photo blurred by a Gaussian of radius ≥ 1% of its short side is flagged, no
    original is; the 2048-px tile blurred by 12 px too, which cleanvision calls sharp."""
    from cleanvision import Imagelab

    planted = blurred_photos(tmp_path / "blur")
    files = sorted(planted)
    stats = [image_stats(decode((tmp_path / "blur" / f).read_bytes(), f)) for f in files]
    ours = issues({n: np.array(v) for n, v in ImageStats.columns(stats).items()})
    flagged = dict(zip(files, ours["blurry"].tolist(), strict=True))
    assert len(files) == 4 * 22 + 2  # 22 photos: 12 COCO tiles, 3 labelImg, 7 YOLO
    assert flagged == {f: blurred for f, (_, blurred) in planted.items()}
    paths = [str(tmp_path / "blur" / f) for f in ("big.png", "big_blurred.png")]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lab = Imagelab(filepaths=paths)
        lab.find_issues({"blurry": {}})
    assert lab.issues["is_blurry_issue"].tolist() == [False, False]  # blind to it


def test_pixels_are_lent_without_a_copy_and_equal_numpy_s() -> None:
    """The statistics read an image's pixels through Pillow's Arrow export (no copy): the same
    values as `np.asarray` for the corpus's photos in RGB and L, read-only; an image whose rows
    are not in one block of memory, and another mode, are copied as before."""
    photos = sorted((DATA / "coco_roboflow_trees").rglob("*.jpg"))
    assert len(photos) == 12
    for path in photos:
        image = decode(path.read_bytes(), path.name)
        for im in (image, image.convert("L")):
            lent = pixels(im)
            assert lent.shape == np.asarray(im).shape and not lent.flags.writeable
            assert np.array_equal(lent, np.asarray(im))
        if hasattr(Image.Image, "__arrow_c_array__"):  # Pillow 11.2 on: lent, not copied
            assert not pixels(image).flags.c_contiguous and pixels(image).strides[1] == 4
    big = Image.new("RGB", (8000, 6000), (1, 2, 3))  # over one block: copied
    copied = pixels(big)
    assert copied.flags.c_contiguous and copied.shape == (6000, 8000, 3)
    assert copied[0, 0].tolist() == copied[-1, -1].tolist() == [1, 2, 3]
    rgba = Image.new("RGBA", (5, 4), (1, 2, 3, 4))
    assert pixels(rgba).shape == (4, 5, 4)


def test_order_statistics_are_a_full_sort_s() -> None:
    """The k-th smallest found in the values' bins equal a sort's, ties, constants and one
    value included; the percentiles made from them equal numpy's linear interpolation."""
    from visor.quality import kernels
    from visor.quality.images import _percentiles

    rng = np.random.default_rng(7)
    arrays = [
        rng.random(76800).astype(np.float32) * 65025,
        (rng.random(1001) ** 8).astype(np.float32),  # most values in the lowest bins
        rng.integers(0, 3, 2500).astype(np.float32) / 2,  # three values, many ties
        np.zeros(100, np.float32),  # black: every square 0
        np.full(100, 0.5, np.float32),
        np.array([0.3], np.float32),
    ]
    for values in arrays:
        ordered = np.sort(values)
        ranks = np.unique(rng.integers(0, values.size, 6))
        assert np.array_equal(kernels.order_statistics(values, ranks), ordered[ranks])
        found = _percentiles(values.size, functools.partial(kernels.order_statistics, values))
        last, expected = values.size - 1, []
        for q in (1, 5, 99):
            at = q / 100 * last
            a, b = float(ordered[int(at)]), float(ordered[min(int(at) + 1, last)])
            expected.append(a + (b - a) * (at - int(at)))
        assert found == expected
        assert np.allclose(found, np.percentile(values, (1, 5, 99)), rtol=1e-6)


def test_one_pass_gives_what_pillow_and_numpy_give() -> None:
    """`kernels.scan` on the corpus's photos (pixels lent by Pillow, rows apart) and on random
    and grey pixels: Pillow's histograms and grey copy, the channels' equality, and per
    sampled pixel the float32 brightness `_brightness` computes."""
    from visor.quality import kernels
    from visor.quality.images import WEIGHTED_SQUARES, _brightness

    rng = np.random.default_rng(3)
    photos = sorted((DATA / "coco_roboflow_trees").rglob("*.jpg"))[:4]
    images = [decode(p.read_bytes(), p.name) for p in photos]
    images += [Image.fromarray(rng.integers(0, 256, (97, 131, 3), dtype=np.uint8))]
    images += [images[0].convert("L").convert("RGB")]
    for image, step in itertools.product(images, (1, 2)):
        counts, grey, same, squares, sampled = kernels.scan(pixels(image), step, WEIGHTED_SQUARES)
        assert counts.ravel().tolist() == image.histogram()
        assert np.array_equal(grey, np.asarray(image.convert("L")))
        every = np.asarray(image)
        assert same == bool((every == every[..., :1]).all())
        r, g, b = (every[::step, ::step, c].astype(np.float32) for c in range(3))
        levels = np.sqrt(squares) / np.float32(255)
        assert np.array_equal(levels, _brightness(r, g, b).ravel())
        assert np.array_equal(sampled, np.bincount(every[::step, ::step, 0].ravel(), minlength=256))
    assert same  # the last: grey


def test_laplacian_ratio_is_the_variances_ratio() -> None:
    from visor.quality import kernels

    rng = np.random.default_rng(5)
    for gray in (rng.integers(0, 256, (40, 57), dtype=np.uint8), np.full((9, 9), 7, np.uint8)):
        a = gray.astype(np.float64)
        lap = 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
        expected = lap.var() / a.var() if a.var() > 1e-6 else 0.0
        assert kernels.laplacian_ratio(gray) == pytest.approx(expected, rel=1e-12)
