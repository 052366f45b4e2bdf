"""Pascal VOC: `JPEGImages/<file>`, `Annotations/<stem>.xml` (pixel corners, as written by
labelImg), `ImageSets/Main/<split>.txt`. File names are unique across splits."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from visor.export.records import ExportSample


def _number(value: float) -> str:
    return f"{round(value, 3):g}"


class VocWriter:
    def __init__(self, out: Path, classes: list[str]):
        self.out = out
        self.folder = out / "Annotations"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lists: dict[str, list[str]] = {}

    def image_path(self, sample: ExportSample) -> str:
        return f"JPEGImages/{sample.name}"

    def add(self, sample: ExportSample) -> None:
        # Written as text, not through ElementTree: a tree per image was most of the time of
        # a large export (bench/export.py).
        parts = [
            "<?xml version='1.0' encoding='utf-8'?>\n<annotation>\n"
            "  <folder>JPEGImages</folder>\n"
            f"  <filename>{escape(sample.name)}</filename>\n"
            f"  <size>\n    <width>{sample.width or 0}</width>\n"
            f"    <height>{sample.height or 0}</height>\n    <depth>3</depth>\n  </size>\n"
        ]
        for box in sample.boxes:
            parts.append(
                f"  <object>\n    <name>{escape(box.cls)}</name>\n    <difficult>0</difficult>\n"
                f"    <bndbox>\n      <xmin>{_number(box.x)}</xmin>\n"
                f"      <ymin>{_number(box.y)}</ymin>\n"
                f"      <xmax>{_number(box.x + box.w)}</xmax>\n"
                f"      <ymax>{_number(box.y + box.h)}</ymax>\n    </bndbox>\n  </object>\n"
            )
        for cls in sample.classes:  # an image-level label: an object without a box
            parts.append(f"  <object>\n    <name>{escape(cls)}</name>\n  </object>\n")
        parts.append("</annotation>\n")
        (self.folder / f"{sample.stem}.xml").write_text("".join(parts), encoding="utf-8")
        if sample.split:
            self.lists.setdefault(sample.split, []).append(sample.stem)

    def finish(self) -> None:
        folder = self.out / "ImageSets" / "Main"
        for split, stems in self.lists.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{split}.txt").write_text("\n".join(stems) + "\n", encoding="utf-8")
