"""COCO: `annotations/instances_<split>.json` with `images/<split>/<file>`, streamed (each
split's images and annotations go to scratch files, joined into one JSON at the end), so a
million boxes never sit in memory. Category ids 1..K in class-name order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import IO, Any

from visor.export.records import ExportSample, split_folder


class CocoWriter:
    image_folder = "images/{split}"

    def __init__(
        self,
        out: Path,
        classes: list[str],
        info: dict[str, Any] | None = None,
        licenses: list[Any] | None = None,
    ):
        self.out = out
        self.category = {name: i + 1 for i, name in enumerate(classes)}
        self.info = info or {"description": "exported by Visor"}
        self.licenses = licenses or []
        self._files: dict[str, tuple[IO[str], IO[str], list[int]]] = {}
        self._next_box = 1

    def image_path(self, sample: ExportSample) -> str:
        return f"images/{split_folder(sample.split)}/{sample.name}"

    def add(self, sample: ExportSample) -> None:
        split = split_folder(sample.split)
        if split not in self._files:
            scratch = self.out / ".scratch"
            scratch.mkdir(exist_ok=True)
            self._files[split] = (
                open(scratch / f"{split}.images", "w", encoding="utf-8"),  # noqa: SIM115
                open(scratch / f"{split}.boxes", "w", encoding="utf-8"),  # noqa: SIM115
                [0, 0],
            )
        images, boxes, counts = self._files[split]
        entry = {"id": sample.id, "file_name": sample.name}
        if sample.width and sample.height:
            entry.update(width=sample.width, height=sample.height)
        images.write(("," if counts[0] else "") + json.dumps(entry))
        counts[0] += 1
        # Formatted by hand: json.dumps per box was most of a large export's time. Numbers
        # are finite (ingest refuses others), so repr is valid JSON.
        parts = []
        for box in sample.boxes:
            score = "" if box.score is None else f', "score": {float(box.score)!r}'
            parts.append(
                f'{{"id": {self._next_box}, "image_id": {sample.id}, '
                f'"category_id": {self.category[box.cls]}, "bbox": [{float(box.x)!r}, '
                f"{float(box.y)!r}, {float(box.w)!r}, {float(box.h)!r}], "
                f'"area": {float(box.w * box.h)!r}, "iscrowd": 0{score}}}'
            )
            self._next_box += 1
        if parts:
            boxes.write(("," if counts[1] else "") + ",".join(parts))
            counts[1] += len(parts)

    def finish(self) -> None:
        folder = self.out / "annotations"
        folder.mkdir(parents=True, exist_ok=True)
        categories = json.dumps(
            [{"id": i, "name": name, "supercategory": "none"} for name, i in self.category.items()]
        )
        for split, (images, boxes, _) in self._files.items():
            images.close()
            boxes.close()
            with open(folder / f"instances_{split}.json", "w", encoding="utf-8") as f:
                f.write(f'{{"info": {json.dumps(self.info)}, ')
                f.write(f'"licenses": {json.dumps(self.licenses)}, ')
                f.write(f'"categories": {categories}, "images": [')
                with open(images.name, encoding="utf-8") as part:
                    shutil.copyfileobj(part, f)
                f.write('], "annotations": [')
                with open(boxes.name, encoding="utf-8") as part:
                    shutil.copyfileobj(part, f)
                f.write("]}")
        shutil.rmtree(self.out / ".scratch", ignore_errors=True)
