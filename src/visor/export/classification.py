"""Class folders: `<split>/<class>/<file>` (samples without a split: `<class>/<file>`). Only
samples with exactly one image-level class can be written; the others are skipped, counted."""

from __future__ import annotations

from pathlib import Path

from visor.export.records import ExportSample


class ClassificationWriter:
    def __init__(self, out: Path, classes: list[str]):
        self.out = out

    def image_path(self, sample: ExportSample) -> str:
        base = f"{sample.split}/" if sample.split else ""
        return f"{base}{sample.classes[0]}/{sample.name}"

    def skip_reason(self, sample: ExportSample) -> str | None:
        if len(sample.classes) != 1:
            return f"{len(sample.classes)} image-level classes (a class folder needs exactly 1)"
        return None

    def add(self, sample: ExportSample) -> None:
        pass  # the folder is the label: the image is all there is

    def finish(self) -> None:
        pass
