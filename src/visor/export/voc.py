"""Pascal VOC: `JPEGImages/<file>`, `Annotations/<stem>.xml` (pixel corners, as written by
labelImg), `ImageSets/Main/<split>.txt`. File names are unique across splits."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from visor.export.records import ExportSample, TextFiles

# A box as an <object> with pixel corners rounded to 3 decimals (`c.xml`: the class name
# escaped for XML).
BOX_SQL = (
    "'  <object>\n    <name>' || c.xml || '</name>\n    <difficult>0</difficult>\n"
    "    <bndbox>\n      <xmin>' || printf('%g', round(l.x, 3)) || '</xmin>\n"
    "      <ymin>' || printf('%g', round(l.y, 3)) || '</ymin>\n"
    "      <xmax>' || printf('%g', round(l.x + l.w, 3)) || '</xmax>\n"
    "      <ymax>' || printf('%g', round(l.y + l.h, 3)) || '</ymax>\n"
    "    </bndbox>\n  </object>\n'"
)


class VocWriter:
    BOX_SQL = BOX_SQL

    @staticmethod
    def class_columns(classes: list[str]) -> dict[str, list[str]]:
        return {"xml": [escape(name) for name in classes]}  # `c.xml` in BOX_SQL

    def __init__(self, out: Path, classes: list[str]):
        self.out = out
        self.files = TextFiles(str(out))
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
            f"    <height>{sample.height or 0}</height>\n    <depth>3</depth>\n  </size>\n",
            sample.text,
        ]
        for cls in sample.classes:  # an image-level label: an object without a box
            parts.append(f"  <object>\n    <name>{escape(cls)}</name>\n  </object>\n")
        parts.append("</annotation>\n")
        self.files.write("Annotations", f"{sample.stem}.xml", "".join(parts))
        if sample.split:
            self.lists.setdefault(sample.split, []).append(sample.stem)

    def close(self) -> None:
        self.files.close()

    def finish(self) -> None:
        self.close()
        folder = self.out / "ImageSets" / "Main"
        for split, stems in self.lists.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{split}.txt").write_text("\n".join(stems) + "\n", encoding="utf-8")
