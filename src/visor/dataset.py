"""The Python API of one dataset: `ws.dataset(name)` gives a `Dataset`, the same class in
every mode. Each method builds an operation (`visor.ops`) and hands it to the workspace's
runner: this process's store, or a running `visor serve` over HTTP. Job methods return the
job (`wait=True`: the finished job, or `JobFailed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from visor import ops
from visor.errors import InvalidInput
from visor.ops.base import make
from visor.store.samples import SampleFilter

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from visor.ops.base import Op
    from visor.ops.runner import Runner

Job = dict[str, Any]


class _Part:
    """What every part of the API has: the dataset's name and the runner."""

    def __init__(self, runner: Runner, name: str) -> None:
        self._runner = runner
        self.name = name

    def _run(self, cls: type[Op], wait: bool = False, /, **fields: Any) -> Any:
        return self._runner.run(make(cls, **fields), self.name, wait=wait)


class Dataset(_Part):
    """One dataset: its samples, labels, tags, vectors, maps, checks and exports."""

    def __init__(self, runner: Runner, row: dict[str, Any]) -> None:
        super().__init__(runner, row["name"])
        self.row = row
        self.id: int = row["id"]

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {self.row.get('num_samples')} samples)"

    # -- samples ----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return self._run(ops.Info)

    def samples(
        self,
        filters: SampleFilter | None = None,
        *,
        offset: int = 0,
        limit: int = 100,
        sort: str = "id",
        descending: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of the samples matching `filters`: (total, items)."""
        found = self._run(ops.Samples, filters=filters or SampleFilter(), offset=offset,
                          limit=limit, sort=sort, descending=descending)  # fmt: skip
        return found["total"], found["items"]

    def to_arrow(self, filters: SampleFilter | None = None, *, labels: bool = False) -> pa.Table:
        """The samples (one row each: path, size, split, classes, tags, scores), or with
        `labels` one row per label, as an Arrow table."""
        return self._run(ops.Table, filters=filters or SampleFilter(), labels=labels)

    def to_pandas(
        self, filters: SampleFilter | None = None, *, labels: bool = False
    ) -> pd.DataFrame:
        """`to_arrow` as a pandas DataFrame."""
        return self.to_arrow(filters, labels=labels).to_pandas()

    def sample(self, sample_id: int) -> dict[str, Any]:
        """One sample; `detection_check` when cleanlab's detection check has scored it."""
        return self._run(ops.Sample, sample_id=sample_id)

    def labels(self, sample_id: int) -> list[dict[str, Any]]:
        return self._run(ops.Labels, sample_id=sample_id)

    def thumbnail_bytes(self, sample_id: int) -> bytes | None:
        """The thumbnail's JPEG bytes; None when the image cannot be read."""
        return self._run(ops.Thumbnail, sample_id=sample_id)

    def add_tags(self, ids: Sequence[int] | np.ndarray | SampleFilter, tags: list[str]) -> int:
        """Tag samples (ids, or those a `SampleFilter` keeps); returns how many changed."""
        return self._run(ops.AddTags, **_chosen(ids), tags=tags)

    def remove_tags(self, ids: Sequence[int] | np.ndarray | SampleFilter, tags: list[str]) -> int:
        return self._run(ops.RemoveTags, **_chosen(ids), tags=tags)

    def select(self, ids: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Keep a set of sample ids (e.g. a lasso) under a token that filters, tags and
        pages can name (`SampleFilter(selection=...)`)."""
        return self._run(ops.Select, ids=[int(i) for i in ids])

    def delete(self) -> None:
        self._run(ops.DeleteDataset)

    # -- predictions and checks ---------------------------------------------------------------

    def import_predictions(
        self,
        path: str,
        source: str,
        *,
        format: str | None = None,
        replace: bool = False,
        names: str | None = None,
        split: str | None = None,
    ) -> dict[str, Any]:
        """Add a model's predictions as `source` (see `ops.ImportPredictions`)."""
        return self._run(ops.ImportPredictions, path=str(path), source=source, format=format,
                         replace=replace, names=names, split=split)  # fmt: skip

    def prediction_sources(self) -> dict[str, int]:
        return self._run(ops.PredictionSources)

    def evaluate(self, source: str, *, wait: bool = False, **options: Any) -> Job:
        """Start evaluating `source` against the ground truth; options: name, iou,
        iou_thresholds, classwise, max_dets, split (see `ops.Evaluate`)."""
        return self._run(ops.Evaluate, wait, source=source, **options)

    def compute_quality(self, *, wait: bool = False) -> Job:
        """Start measuring every image not measured yet, then flag each sample's issues."""
        return self._run(ops.ComputeQuality, wait)

    def quality(self, examples: int = 12) -> dict[str, Any]:
        return self._run(ops.QualityReport, examples=examples)

    def find_label_errors(self, model: str | None = None, *, wait: bool = False) -> Job:
        """Start scoring every label from its neighbours' labels (cleanlab)."""
        return self._run(ops.FindLabelErrors, wait, model=model)

    def find_detection_label_errors(
        self, source: str, *, split: str | None = None, wait: bool = False
    ) -> Job:
        """Start cleanlab's detection check of the boxes against `source`'s predictions."""
        return self._run(ops.FindLabelErrors, wait, predictions=source, split=split)

    def label_errors(self, examples: int = 12) -> dict[str, Any] | None:
        return self._run(ops.LabelErrorsReport, examples=examples)

    def health(self, examples: int = 12) -> dict[str, Any]:
        """Every problem found so far: per kind its count, share, worst examples and the
        filter showing them all (`compute_health` computes what is missing)."""
        return self._run(ops.HealthReport, examples=examples)

    def compute_health(self, model: str | None = None, *, wait: bool = False) -> Job:
        """Start computing every signal of the health report not computed yet (one job)."""
        return self._run(ops.ComputeHealth, wait, model=model)

    def export(self, out: str, format: str = "coco", *, wait: bool = False, **options: Any) -> Job:
        """Start writing the samples (filters, or a saved view) to the folder `out` (see
        `ops.Export`). The folder appears whole when the job ends, or not at all."""
        return self._run(ops.Export, wait, out=str(out), format=format, **options)

    def export_download(self, format: str = "coco", *, wait: bool = False, **options: Any) -> Job:
        """Start an export into a zip kept under $VISOR_HOME/exports for download."""
        return self._run(ops.Export, wait, download=True, format=format, **options)

    # -- vectors, neighbours, maps --------------------------------------------------------------

    def embed(self, model: str | None = None, *, wait: bool = False, **options: Any) -> Job:
        """Start embedding every image without a vector from `model` (see `ops.Embed`: device,
        precision, batch_size, workers, processes, recompute, quality, objects, kind, source,
        ray, ray_actors, ray_gpus, staging, backend). Asking again while it runs returns that
        job."""
        return self._run(ops.Embed, wait, model=model, **options)

    def embeddings(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ids (int64, ascending) and their vectors, an (n, d) float32 array."""
        return self._run(ops.Vectors, model=model)

    def embedding_status(self) -> dict[str, Any]:
        return self._run(ops.EmbeddingStatus)

    def embedding_errors(self, model: str | None = None, limit: int = 1000) -> list[dict]:
        return self._run(ops.EmbeddingErrors, model=model, limit=limit)

    def default_model(self) -> str:
        return self._run(ops.DefaultModel)

    def build_index(self, model: str | None = None, *, wait: bool = False) -> Job:
        return self._run(ops.BuildIndex, wait, model=model)

    def index_status(self, model: str | None = None) -> dict[str, Any]:
        return self._run(ops.IndexStatus, model=model)

    def similar(
        self,
        sample_id: int | None = None,
        k: int = 20,
        model: str | None = None,
        filters: SampleFilter | None = None,
        *,
        text: str | None = None,
    ) -> list[dict[str, Any]]:
        """The k samples nearest to `sample_id` by cosine distance (itself excluded), or with
        `text` the k whose images are nearest to those words (CLIP and SigLIP models)."""
        if (sample_id is None) == (text is None):
            raise InvalidInput("give a sample id or a text, one of the two")
        if text is not None:
            return self._run(ops.SimilarToText, text=text, k=k, model=model, filters=filters)
        return self._run(ops.Similar, sample_id=sample_id, k=k, model=model, filters=filters)

    def similar_to_image(
        self,
        data: bytes,
        name: str,
        k: int = 20,
        model: str | None = None,
        filters: SampleFilter | None = None,
    ) -> list[dict[str, Any]]:
        """The k samples nearest to an image not in the dataset (embedded now)."""
        import base64

        return self._run(ops.SimilarToImage, image=base64.b64encode(data), filename=name, k=k,
                         model=model, filters=filters)  # fmt: skip

    def find_duplicates(
        self,
        model: str | None = None,
        threshold: float | None = None,
        *,
        exact_only: bool = False,
        wait: bool = False,
    ) -> Job:
        """Start grouping exact copies and near-duplicates (see `ops.FindDuplicates`)."""
        return self._run(ops.FindDuplicates, wait, model=model, threshold=threshold,
                         exact_only=exact_only)  # fmt: skip

    def tag_zero_shot(
        self,
        labels: list[str] | None = None,
        model: str | None = None,
        *,
        threshold: float = 0.5,
        template: str = "a photo of a {}",
        prefix: str = "zero-shot:",
        wait: bool = False,
    ) -> Job:
        """Start tagging each image with its likeliest label by a CLIP/SigLIP model (see
        `ops.TagZeroShot`); one undoable edit."""
        return self._run(ops.TagZeroShot, wait, labels=labels, model=model,
                         threshold=threshold, template=template, prefix=prefix)  # fmt: skip

    def find_clusters(
        self,
        map_id: int | None = None,
        min_cluster_size: int | None = None,
        *,
        vocabulary: list[str] | None = None,
        wait: bool = False,
    ) -> Job:
        """Start finding a map's density clusters (see `ops.FindClusters`; `vocabulary`:
        words a CLIP/SigLIP map's clusters are named by)."""
        return self._run(ops.FindClusters, wait, map_id=map_id,
                         min_cluster_size=min_cluster_size, vocabulary=vocabulary)  # fmt: skip

    def clusters(self, map_id: int | None = None) -> dict[str, Any]:
        """A map's clusters, largest first, with the run that found them."""
        return self._run(ops.MapClusters, map_id=map_id)

    def duplicates(self, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        return self._run(ops.DuplicateGroups, offset=offset, limit=limit)

    def compute_uniqueness(
        self, model: str | None = None, k: int | None = None, *, wait: bool = False
    ) -> Job:
        """Start scoring every embedded sample's uniqueness in [0, 1]."""
        fields = {} if k is None else {"k": k}
        return self._run(ops.ComputeUniqueness, wait, model=model, **fields)

    def make_map(
        self,
        model: str | None = None,
        method: str = "umap",
        params: dict[str, Any] | None = None,
        *,
        uniqueness: bool = True,
        objects: bool = False,
        wait: bool = False,
    ) -> Job:
        """Start laying out the vectors in 2D; the new map becomes the default."""
        return self._run(ops.MakeMap, wait, model=model, method=method, params=params or {},
                         uniqueness=uniqueness, objects=objects)  # fmt: skip

    def maps(self) -> list[dict[str, Any]]:
        return self._run(ops.Maps)

    def map(self, map_id: int | None = None) -> dict[str, Any]:
        return self._run(ops.MapInfo, map_id=map_id)

    def map_points(self, map_id: int | None = None) -> pa.Table:
        return self._run(ops.MapPoints, map_id=map_id)

    def set_default_map(self, map_id: int) -> dict[str, Any]:
        return self._run(ops.SetDefaultMap, map_id=map_id)

    # -- collections --------------------------------------------------------------------------

    @property
    def evaluations(self) -> Evaluations:
        """The evaluations by name: list(), get(name), delete(name), cell(...)."""
        return Evaluations(self._runner, self.name)

    @property
    def objects(self) -> Objects:
        """The boxes as items: status, similar boxes, the object analysis and its report."""
        return Objects(self._runner, self.name)

    @property
    def edits(self) -> Edits:
        """Label edits with undo: set_class, delete, add, set_image_class, exclude, relabel,
        accept_suggestions; history, batch, undo, redo, revert."""
        return Edits(self._runner, self.name)

    @property
    def views(self) -> Views:
        """Saved views: save(name, ...), list(), get(name), delete(name)."""
        return Views(self._runner, self.name)


class Evaluations(_Part):
    def list(self) -> list[dict[str, Any]]:
        return self._run(ops.ListEvaluations)

    def get(self, name: str) -> dict[str, Any]:
        return self._run(ops.GetEvaluation, evaluation=name)

    def __getitem__(self, name: str) -> dict[str, Any]:
        return self.get(name)

    def delete(self, name: str) -> None:
        self._run(ops.DeleteEvaluation, evaluation=name)

    def sample_counts(self, name: str) -> pa.Table:
        return self._run(ops.EvaluationSamples, evaluation=name)

    def cell(
        self, name: str, gt_class: str | None, pred_class: str | None, limit: int = 1000
    ) -> dict[str, Any]:
        return self._run(ops.ConfusionCell, evaluation=name, gt_class=gt_class,
                         pred_class=pred_class, limit=limit)  # fmt: skip


class Objects(_Part):
    def status(self) -> list[dict[str, Any]]:
        return self._run(ops.ObjectStatus)

    def default_model(self) -> str:
        return self._run(ops.ObjectModel)

    def skipped(self, model: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        return self._run(ops.SkippedObjects, model=model, limit=limit)

    def vectors(self, model: str | None = None) -> Any:
        """Label ids (ascending), their sample ids and their vectors."""
        return self._run(ops.ObjectVectors, model=model)

    def box(self, label_id: int) -> dict[str, Any]:
        return self._run(ops.ObjectBox, label_id=label_id)

    def similar(self, label_id: int, k: int = 20, model: str | None = None) -> list[dict]:
        return self._run(ops.SimilarObjects, label_id=label_id, k=k, model=model)

    def analyse(
        self, model: str | None = None, threshold: float | None = None, *, wait: bool = False
    ) -> Job:
        return self._run(ops.AnalyseObjects, wait, model=model, threshold=threshold)

    def report(self, examples: int = 12) -> dict[str, Any] | None:
        return self._run(ops.ObjectReport, examples=examples)


class Edits(_Part):
    def apply(self, changes: list[dict[str, Any]], *, who: str | None = None) -> dict[str, Any]:
        """Make `changes` as one batch: all of them or, if one can't be made, none."""
        return self._run(ops.ApplyEdits, changes=changes, who=who)

    def set_class(self, label_id: int, cls: str, *, who: str | None = None) -> dict[str, Any]:
        return self.apply([{"action": "set_class", "label_id": label_id, "class": cls}], who=who)

    def delete(self, label_id: int, *, who: str | None = None) -> dict[str, Any]:
        return self.apply([{"action": "delete", "label_id": label_id}], who=who)

    def add(
        self,
        sample_id: int,
        cls: str,
        box: Sequence[float] | None = None,
        *,
        who: str | None = None,
    ) -> dict[str, Any]:
        """Add a ground-truth box (x, y, w, h in pixels) or, without one, an image class."""
        box = None if box is None else [float(v) for v in box]
        change = {"action": "add", "sample_id": sample_id, "class": cls, "box": box}
        return self.apply([change], who=who)

    def set_image_class(self, sample_id: int, cls: str, *, who: str | None = None) -> dict:
        change = {"action": "set_image_class", "sample_id": sample_id, "class": cls}
        return self.apply([change], who=who)

    def exclude(self, sample_id: int, *, exclude: bool = True, who: str | None = None) -> dict:
        """Leave a sample out of exports (or, with `exclude=False`, take it back)."""
        action = "exclude" if exclude else "include"
        return self.apply([{"action": action, "sample_id": sample_id}], who=who)

    def relabel(
        self,
        from_class: str,
        to_class: str,
        sample_ids: Sequence[int] | np.ndarray | SampleFilter | None = None,
        *,
        who: str | None = None,
    ) -> dict[str, Any]:
        """Every ground-truth label of `from_class` (among `sample_ids` or the samples a
        `SampleFilter` keeps, else all) becomes `to_class`, as one undoable edit."""
        among = {} if sample_ids is None else _chosen(sample_ids)
        return self._run(ops.Relabel, from_class=from_class, to_class=to_class, who=who, **among)

    def accept_suggestions(self, label_ids: Sequence[int], *, who: str | None = None) -> dict:
        return self._run(ops.AcceptSuggestions, label_ids=[int(i) for i in label_ids], who=who)

    def history(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._run(ops.EditHistory, limit=limit)

    def batch(self, batch: int) -> list[dict[str, Any]]:
        return self._run(ops.EditBatch, batch=batch)

    def undo(self) -> dict[str, Any]:
        return self._run(ops.Undo)

    def redo(self) -> dict[str, Any]:
        return self._run(ops.Redo)

    def revert(self, batch: int) -> dict[str, Any]:
        return self._run(ops.Revert, batch=batch)


class Views(_Part):
    def save(
        self,
        name: str,
        *,
        filters: SampleFilter | dict[str, Any] | None = None,
        selection: str | Sequence[int] | np.ndarray | None = None,
        sort: str = "id",
        order: str = "asc",
        ui: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Save (or replace) view `name`: filters (a SampleFilter or the samples API's names),
        a selection (a token, or sample ids), the sort, and what the UI shows."""
        chosen = {"selection": selection} if isinstance(selection, str) else {
            "ids": None if selection is None else [int(i) for i in selection]}  # fmt: skip
        return self._run(ops.SaveView, view=name, filters=filters or SampleFilter(), sort=sort,
                         order=order, ui=ui or {}, **chosen)  # fmt: skip

    def list(self) -> list[dict[str, Any]]:
        return self._run(ops.ListViews)

    def get(self, name: str) -> dict[str, Any]:
        return self._run(ops.GetView, view=name)

    def delete(self, name: str) -> None:
        self._run(ops.DeleteView, view=name)

    def filter(self, name: str) -> SampleFilter:
        """The samples view `name` shows, as a filter (its lasso named by its token)."""
        found = self.get(name)
        return SampleFilter.model_validate({**found["filters"], "selection": found["selection"]})


def _chosen(samples: Sequence[int] | np.ndarray | SampleFilter) -> dict[str, Any]:
    """An op's `ids` or `filters` (`ops.base.Chosen`) from what a method was given."""
    if isinstance(samples, SampleFilter):
        return {"filters": samples}
    return {"ids": [int(i) for i in samples]}
