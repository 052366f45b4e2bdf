"""Generated COCO files, YOLO label files and VOC XML fed to the format readers: whatever
they hold, no exception but Visor's own escapes, nothing outside the dataset root is opened,
and every skipped record says why."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from visor.errors import VisorError
from visor.formats.detect import read_dataset
from visor.formats.records import Skipped
from visor.services.ingest import list_files
from visor.sources import Source

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Names that try to leave the root, or are not names at all, beside ordinary ones.
NAMES = st.sampled_from(
    [
        "1.jpg",
        "images/1.jpg",
        "../outside.jpg",
        "../../etc/passwd",
        "/etc/passwd",
        "a\x00b.jpg",
        "sub/../../outside.jpg",
        "",
        ".",
        "images",
        "C:\\x.jpg",
    ]
) | st.text(max_size=12)
NUMBERS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, 1, -1, 1e308, -1e308, 0.5])
)
SCALARS = st.none() | st.booleans() | NUMBERS | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return value | JSON


IMAGE = st.fixed_dictionaries(
    {"id": _maybe(st.integers(0, 3)), "file_name": _maybe(NAMES)},
    optional={"width": _maybe(NUMBERS), "height": _maybe(NUMBERS), "extra": JSON},
)
ANNOTATION = st.fixed_dictionaries(
    {
        "image_id": _maybe(st.integers(0, 3)),
        "category_id": _maybe(st.integers(0, 3)),
        "bbox": _maybe(st.lists(NUMBERS, max_size=6)),
    },
    optional={"id": JSON, "iscrowd": JSON, "score": JSON, "segmentation": JSON},
)
CATEGORY = st.fixed_dictionaries(
    {"id": _maybe(st.integers(0, 3)), "name": _maybe(st.text(max_size=6))}
)
COCO = (
    st.fixed_dictionaries(
        {},
        optional={
            "images": _maybe(st.lists(_maybe(IMAGE), max_size=5)),
            "annotations": _maybe(st.lists(_maybe(ANNOTATION), max_size=8)),
            "categories": _maybe(st.lists(_maybe(CATEGORY), max_size=4)),
        },
    )
    | JSON
)

TOKEN = st.sampled_from(["0", "1", "2", "7", "-1", "0.5", "1.5", "nan", "inf", "1e308", "x", ""])
YOLO_LINE = st.lists(TOKEN | NUMBERS.map(str), max_size=12).map(" ".join)
YOLO_LABELS = st.lists(YOLO_LINE, max_size=6).map("\n".join) | st.binary(max_size=40).map(
    lambda b: b.decode("latin-1")
)
YAML = st.sampled_from(
    [
        "names: [a, b, c]\n",
        "names: {0: a, 2: c}\n",
        "names: {x: a}\n",
        "names: 3\n",
        "train: ../outside/images\nval: /etc\nnames: [a]\n",
        "names: [a\n",
        "- 1\n- 2\n",
        "",
    ]
)

XML_TEXT = st.sampled_from(["1", "10", "0", "-5", "nan", "inf", "1e308", "x", ""]) | NUMBERS.map(
    str
)


@st.composite
def voc_xml(draw: Callable[..., Any]) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=40))
    objects = []
    for _ in range(draw(st.integers(0, 3))):
        box = "".join(
            f"<{k}>{draw(XML_TEXT)}</{k}>"
            for k in ("xmin", "ymin", "xmax", "ymax")
            if draw(st.booleans()) or k == "xmin"
        )
        name = draw(st.sampled_from(["cat", "", " ", "<![CDATA[x]]>"]))
        bndbox = f"<bndbox>{box}</bndbox>" if draw(st.booleans()) else ""
        objects.append(f"<object><name>{name}</name>{bndbox}</object>")
    filename = draw(st.sampled_from(["1.jpg", "../outside.jpg", "/etc/passwd", "", "1"]))
    size = f"<size><width>{draw(XML_TEXT)}</width><height>{draw(XML_TEXT)}</height></size>"
    return f"<annotation><filename>{filename}</filename>{size}{''.join(objects)}</annotation>"


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file a Source opens, as a real path (the readers' one way to read a file)."""
    paths: list[str] = []
    real_open = Source._open

    def spy(self: Source, relpath: str, full: str) -> IO[bytes]:
        paths.append(os.path.realpath(full))
        return real_open(self, relpath, full)

    monkeypatch.setattr(Source, "_open", spy)
    return paths


def _read(fmt: str, files: dict[str, str | bytes], opened: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (Path(tmp) / "outside.jpg").write_bytes(b"secret")
        write_image(root / "images" / "1.jpg")
        write_image(root / "1.jpg")
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        opened.clear()
        source = Source(str(root))
        try:
            records = list(read_dataset(source, list_files(source), fmt))
        except VisorError as e:
            assert e.message  # the project's own errors, with a message
            records = []
        inside = os.path.realpath(root) + os.sep
        assert all(p.startswith(inside) for p in opened), opened
        for record in records:
            if isinstance(record, Skipped):
                assert isinstance(record.reason, str) and record.reason.strip(), record


@FUZZ
@given(document=COCO)
def test_generated_coco_files(opened: list[str], document: Any) -> None:
    text = json.dumps(document)  # NaN and Infinity as JavaScript writes them: not JSON
    _read("coco", {"annotations/instances_train.json": text}, opened)


@FUZZ
@given(raw=st.binary(max_size=64))
def test_arbitrary_bytes_as_a_coco_file(opened: list[str], raw: bytes) -> None:
    _read("coco", {"annotations/instances_train.json": raw}, opened)


@FUZZ
@given(labels=YOLO_LABELS, config=YAML)
def test_generated_yolo_labels(opened: list[str], labels: str, config: str) -> None:
    _read("yolo", {"data.yaml": config, "labels/1.txt": labels}, opened)


@FUZZ
@given(xml=voc_xml(), beside=st.booleans())
def test_generated_voc_xml(opened: list[str], xml: str, beside: bool) -> None:
    _read("voc", {("1.xml" if beside else "Annotations/1.xml"): xml}, opened)
