"""Pascal VOC: `JPEGImages/<file>`, `Annotations/<stem>.xml` (pixel corners, as written by
labelImg), `ImageSets/Main/<split>.txt`. File names are unique across splits."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from visor.export.records import ExportSample


def _number(value: float) -> str:
    return f"{round(value, 3):g}"


class VocWriter:
    def __init__(self, out: Path, classes: list[str]):
        self.out = out
        self.lists: dict[str, list[str]] = {}

    def image_path(self, sample: ExportSample) -> str:
        return f"JPEGImages/{sample.name}"

    def add(self, sample: ExportSample) -> None:
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "JPEGImages"
        ET.SubElement(root, "filename").text = sample.name
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = str(sample.width or 0)
        ET.SubElement(size, "height").text = str(sample.height or 0)
        ET.SubElement(size, "depth").text = "3"
        for box in sample.boxes:
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = box.cls
            ET.SubElement(obj, "difficult").text = "0"
            corners = ET.SubElement(obj, "bndbox")
            for key, value in (
                ("xmin", box.x),
                ("ymin", box.y),
                ("xmax", box.x + box.w),
                ("ymax", box.y + box.h),
            ):
                ET.SubElement(corners, key).text = _number(value)
        for cls in sample.classes:  # an image-level label: an object without a box
            ET.SubElement(ET.SubElement(root, "object"), "name").text = cls
        ET.indent(root)
        path = self.out / "Annotations" / f"{sample.stem}.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
        if sample.split:
            self.lists.setdefault(sample.split, []).append(sample.stem)

    def finish(self) -> None:
        folder = self.out / "ImageSets" / "Main"
        for split, stems in self.lists.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{split}.txt").write_text("\n".join(stems) + "\n", encoding="utf-8")
