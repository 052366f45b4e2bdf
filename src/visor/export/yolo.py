"""YOLO: `<split>/images/<file>`, `<split>/labels/<stem>.txt` (class index, centre and size
normalised to the image, boxes cut to the image) and `data.yaml` with the class names in
index order (samples without a split: `images/` and `labels/` at the top)."""

from __future__ import annotations

from pathlib import Path

import yaml

from visor.export.records import ExportSample, TextFiles

# A box as a line, cut to the image (a box wholly outside it is left out: YOLO can't say
# it): the class index, centre and size over the image's size, then the score if any.
_X0, _X1 = "greatest(l.x, 0)", "least(l.x + l.w, s.width)"
_Y0, _Y1 = "greatest(l.y, 0)", "least(l.y + l.h, s.height)"
BOX_SQL = (
    f"CASE WHEN {_X1} > {_X0} AND {_Y1} > {_Y0} THEN "
    f"printf('%d %.6f %.6f %.6f %.6f', c.idx, ({_X0} + {_X1}) / 2 / s.width, "
    f"({_Y0} + {_Y1}) / 2 / s.height, ({_X1} - {_X0}) / s.width, ({_Y1} - {_Y0}) / s.height)"
    " || CASE WHEN l.score IS NULL THEN '' ELSE printf(' %.6f', l.score) END || chr(10) END"
)


class YoloWriter:
    BOX_SQL = BOX_SQL

    def __init__(self, out: Path, classes: list[str]):
        self.out = out
        self.classes = classes
        self.splits: set[str | None] = set()
        self.files = TextFiles(str(out))

    def _base(self, sample: ExportSample) -> str:
        return f"{sample.split}/" if sample.split else ""

    def image_path(self, sample: ExportSample) -> str:
        return f"{self._base(sample)}images/{sample.name}"

    def add(self, sample: ExportSample) -> None:
        self.splits.add(sample.split)
        self.files.write(f"{self._base(sample)}labels", f"{sample.stem}.txt", sample.text)

    def close(self) -> None:
        self.files.close()

    def finish(self) -> None:
        self.close()
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
