"""YOLO: `<split>/images/<file>`, `<split>/labels/<stem>.txt` (class index, centre and size
normalised to the image, boxes cut to the image) and `data.yaml` with the class names in
index order (samples without a split: `images/` and `labels/` at the top)."""

from __future__ import annotations

from pathlib import Path

import yaml

from visor.export.records import ExportSample


class YoloWriter:
    def __init__(self, out: Path, classes: list[str]):
        self.out = out
        self.classes = classes
        self.index = {name: i for i, name in enumerate(classes)}
        self.splits: set[str | None] = set()
        self.folders: set[Path] = set()

    def _base(self, sample: ExportSample) -> str:
        return f"{sample.split}/" if sample.split else ""

    def image_path(self, sample: ExportSample) -> str:
        return f"{self._base(sample)}images/{sample.name}"

    def add(self, sample: ExportSample) -> None:
        self.splits.add(sample.split)
        lines = []
        width, height = sample.width or 0, sample.height or 0
        for box in sample.boxes:
            x0, y0 = max(box.x, 0.0), max(box.y, 0.0)
            x1, y1 = min(box.x + box.w, float(width)), min(box.y + box.h, float(height))
            if x1 <= x0 or y1 <= y0:
                continue  # wholly outside the image: YOLO can't say it
            cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
            w, h = (x1 - x0) / width, (y1 - y0) / height
            line = f"{self.index[box.cls]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"
            if box.score is not None:
                line += f" {box.score:.6f}"
            lines.append(line)
        folder = self.out / f"{self._base(sample)}labels"
        if folder not in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.folders.add(folder)
        text = "\n".join(lines) + ("\n" if lines else "")
        (folder / f"{sample.stem}.txt").write_text(text, encoding="utf-8")

    def finish(self) -> None:
        data: dict[str, object] = {}
        named = {s for s in self.splits if s}
        if None in self.splits or not named:
            data.update(train="images", val="images")
        # Training code wants train and val: a split of another name stands in (trainval for
        # train); its folder's name keeps the split's own name for readers that look.
        for split in sorted(named):
            key = {"train": "train", "trainval": "train", "val": "val", "test": "test"}.get(split)
            if key and key not in data:
                data[key] = f"{split}/images"
        if named and "val" not in data:  # training code wants one; another split stands in
            data["val"] = f"{sorted(named)[0]}/images"
        if "train" not in data:
            data["train"] = data["val"]
        data.update(nc=len(self.classes), names=list(self.classes))
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        (self.out / "data.yaml").write_text(text, encoding="utf-8")
