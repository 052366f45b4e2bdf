"""The Python API: `visor.open()` gives a `Workspace`; `workspace.dataset(name)` a `Dataset`.

The CLI and the HTTP API are thin layers over these two classes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from visor.config import Settings, get_settings
from visor.embedding.models import with_weights_warning
from visor.errors import Conflict, InvalidInput, NotFound, VisorError
from visor.media.thumbnails import make_thumbnail, write_atomically
from visor.services import analysis as analysis_service
from visor.services import edits as edit_service
from visor.services import embed as embed_service
from visor.services import evaluate as evaluate_service
from visor.services import export as export_service
from visor.services import health as health_service
from visor.services import ingest as ingest_service
from visor.services import labels as label_service
from visor.services import maps as map_service
from visor.services import objects as object_service
from visor.services import predictions as prediction_service
from visor.services import quality as quality_service
from visor.services import ray_embed as ray_embed_service
from visor.services import search as search_service
from visor.services import views as view_service
from visor.services.changes import Changes
from visor.services.jobs import JobContext, JobRunner
from visor.services.memory import PointsCache, Selections
from visor.services.search import AnnIndex, IndexCache, Searcher, VectorIndex, check_k
from visor.sources import Source
from visor.store import Store
from visor.store import datasets as dataset_rows
from visor.store import embeddings as vector_rows
from visor.store import label_quality as label_quality_rows
from visor.store import maps as map_rows
from visor.store import samples as sample_rows
from visor.store.samples import SampleFilter

log = logging.getLogger("visor")


class Workspace:
    """A store (one DuckDB file under `home`) and the job runner that works on it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = Store(self.settings.db_path)
        self.changes = Changes()
        self.jobs = JobRunner(
            self.store,
            workers=self.settings.job_workers,
            on_end=lambda job: self.changes.record(job.dataset, f"{job.kind} {job.state}"),
        )
        self._sources: dict[str, Source] = {}
        self.indexes = IndexCache()
        self.selections = Selections(self.store)
        self.points = PointsCache()
        self.serving = False  # set by the HTTP server: maps' points are then encoded ahead

    def close(self) -> None:
        self.jobs.shutdown()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- datasets -----------------------------------------------------------------------

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset, with its samples per split, vectors per model and number of maps."""
        rows = dataset_rows.list_datasets(self.store)
        splits: dict[int, dict[str, int]] = {}
        for dataset_id, split, n in self.store.query(
            "SELECT dataset_id, coalesce(split, '(none)'), count(*) FROM samples "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ):
            splits.setdefault(int(dataset_id), {})[str(split)] = int(n)
        maps = dict(self.store.query("SELECT dataset_id, count(*) FROM maps GROUP BY 1"))
        vectors = vector_rows.counts(self.store)
        for row in rows:
            row["splits"] = splits.get(row["id"], {})
            row["vectors"] = vectors.get(row["id"], {})
            row["maps"] = int(maps.get(row["id"], 0))
        return rows

    def warm_points(self) -> None:
        """Encode every dataset's default map's points now, so that the first page to show a
        map does not wait for it (a server calls this at start, in the background)."""
        for row in dataset_rows.list_datasets(self.store):
            dataset = Dataset(self, row)
            if dataset.maps():
                try:
                    dataset.map_points_stream(None)
                except VisorError as e:  # e.g. deleted meanwhile: the page will say
                    log.info("map points of %s not encoded ahead: %s", row["name"], e.message)

    def dataset(self, name: str) -> Dataset:
        row = dataset_rows.get_by_name(self.store, name)
        if row is None:
            raise NotFound(f"dataset {name!r} not found")
        return Dataset(self, row)

    def ingest(
        self,
        root: str,
        name: str,
        *,
        fmt: str | None = None,
        replace: bool = False,
        thumbnails: bool = False,
    ) -> dict[str, Any]:
        """Start ingesting `root` as `name`; returns the job (see `jobs.wait`).

        With `thumbnails`, every thumbnail is made during the job instead of on first request.
        """
        ingest_service.check_can_create(self.store, name, replace)
        self.source(root)  # a missing path or unreachable bucket fails here, not in the job
        params = {"root": root, "format": fmt, "replace": replace, "thumbnails": thumbnails}

        def run(ctx: JobContext) -> dict[str, Any]:
            result = ingest_service.ingest(
                self.store, ctx, name=name, root=root, fmt=fmt, replace=replace
            )
            if thumbnails:
                result["thumbnails"] = self.dataset(name).make_thumbnails(ctx)
            return result

        return self.jobs.submit("ingest", name, params, run).to_dict()

    def inspect(self, root: str) -> dict[str, Any]:
        """The format an ingest of `root` would detect, and its number of images."""
        return ingest_service.inspect(root)

    def source(self, root: str) -> Source:
        if root not in self._sources:
            self._sources[root] = Source(root)
        return self._sources[root]


class Dataset:
    """One dataset: its samples, labels, tags, images and thumbnails."""

    def __init__(self, workspace: Workspace, row: dict[str, Any]) -> None:
        self.workspace = workspace
        self.row = row
        self.id: int = row["id"]
        self.name: str = row["name"]

    @property
    def store(self) -> Store:
        return self.workspace.store

    def info(self) -> dict[str, Any]:
        return {**self.row, **sample_rows.counts(self.store, self.id)}

    def samples(
        self,
        filters: SampleFilter | None = None,
        *,
        offset: int = 0,
        limit: int = 100,
        sort: str = "id",
        descending: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        filters = filters or SampleFilter()
        if filters.evaluation is not None:
            self.evaluations.id_of(filters.evaluation)  # an unknown name is a NotFound
        return sample_rows.page(
            self.store,
            self.id,
            filters,
            offset=offset,
            limit=limit,
            sort=sort,
            descending=descending,
        )

    def boxes(self, ids: Sequence[int], kind: str | None = None) -> dict[int, list[dict[str, Any]]]:
        """The boxes of the given samples by id; `kind` keeps only `gt` or `prediction`."""
        return sample_rows.boxes(self.store, self.id, ids, kind)

    def sample(self, sample_id: int) -> dict[str, Any]:
        """One sample; `detection_check` when cleanlab's detection check has scored it."""
        found = sample_rows.get(self.store, self.id, sample_id)
        if found is None:
            raise NotFound(f"sample {sample_id} not found in dataset {self.name!r}")
        check = label_quality_rows.detection_of_sample(self.store, self.id, sample_id)
        if check is not None:
            found["detection_check"] = check
        return found

    def labels(self, sample_id: int) -> list[dict[str, Any]]:
        self.sample(sample_id)
        return sample_rows.labels(self.store, self.id, sample_id)

    def add_tags(self, ids: Sequence[int] | np.ndarray, tags: list[str]) -> int:
        return self._retag(sample_rows.add_tags, ids, tags)

    def remove_tags(self, ids: Sequence[int] | np.ndarray, tags: list[str]) -> int:
        return self._retag(sample_rows.remove_tags, ids, tags)

    def _retag(
        self,
        change: Callable[[Store, int, np.ndarray, list[str]], int],
        ids: Sequence[int] | np.ndarray,
        tags: list[str],
    ) -> int:
        updated = change(self.store, self.id, self._known(ids), _check_tags(tags))
        self.workspace.points.changed(self.id)  # the map's points carry each sample's tag
        self.workspace.changes.record(self.name, "tags")
        return updated

    def delete(self) -> None:
        import shutil

        dataset_rows.delete_dataset(self.store, self.id)
        self.workspace.indexes.forget(self.id)
        settings = self.workspace.settings
        for folder in (
            settings.thumbnails_dir / str(self.id),
            settings.home / "indexes" / str(self.id),
        ):
            shutil.rmtree(folder, ignore_errors=True)
        self.workspace.changes.record(self.name, "deleted")

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
        """Add a model's predictions as `source`: a COCO results .json (`split`: the split
        whose annotation file's image ids it uses, where each split's file numbers its images
        alike; on a dataset not from COCO, ultralytics' predictions.json, by file_name), a
        folder of YOLO .txt files (`names`: the model's data.yaml when the dataset has no
        class index table) or a .parquet/.csv table (`file_name, class, x, y, w, h, score`).
        An existing source is replaced only with `replace`."""
        result = prediction_service.import_predictions(
            self.store,
            self.row,
            path,
            source,
            fmt=format,
            replace=replace,
            names=names,
            split=split,
        )
        self.workspace.changes.record(self.name, "predictions")
        return result

    def _check_predictions(self, source: str, split: str | None) -> None:
        """Refuse, before a job is queued, a prediction source or a split the dataset lacks."""
        sources = self.prediction_sources()
        if source not in sources:
            known = ", ".join(sources) or "none yet"
            raise NotFound(
                f"dataset {self.name!r} has no predictions from {source!r} (sources: {known}); "
                "add them with import-predictions"
            )
        evaluate_service.check_split(self.store, self.row, split)

    def prediction_sources(self) -> dict[str, int]:
        """The prediction sources and their number of boxes."""
        return prediction_service.sources(self.store, self.id)

    # -- evaluation -----------------------------------------------------------------------

    def evaluate(self, source: str, *, wait: bool = False, **options: Any) -> dict[str, Any]:
        """Start evaluating the predictions of `source` against the ground truth (a job);
        options: name, iou, iou_thresholds, classwise, max_dets, split (see `EvaluateOptions`).
        Results: `ds.evaluations[name]`, and per-sample fields for filters and sorting."""
        checked = evaluate_service.EvaluateOptions(source, **options).checked()
        self._check_predictions(source, checked.split)

        def run(ctx: JobContext) -> dict[str, Any]:
            return evaluate_service.evaluate(self.store, ctx, self.row, checked)

        job = self.workspace.jobs.submit(
            "evaluate", self.name, checked.params(), run, key=str(checked.name)
        ).to_dict()
        return self.workspace.jobs.wait(job["id"]) if wait else job

    # -- image quality --------------------------------------------------------------------

    def compute_quality(self, *, wait: bool = False) -> dict[str, Any]:
        """Start measuring every image not measured yet (brightness, blur, entropy, colour,
        size), then flag each sample's issues (`quality_issue` filter); returns the job."""

        def run(ctx: JobContext) -> dict[str, Any]:
            return quality_service.compute_quality(self.store, ctx, self.row)

        job = self.workspace.jobs.submit("quality", self.name, {}, run, key="quality")
        return self._finish(job.to_dict(), wait)

    def quality(self, examples: int = 12) -> dict[str, Any]:
        """Per image-quality issue: how many samples have it, their share, the worst ones."""
        return quality_service.report(self.store, self.row, examples)

    def find_label_errors(self, model: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        """Start scoring every image-level label from its image's nearest neighbours, and
        every box from its box's (by `model`'s vectors), with cleanlab: `label_issue` filter,
        `label_quality` sort."""
        if model is not None:
            name = model
            if not self.objects.has_vectors(name):
                self._vectors_version(name)  # neither image nor box vectors: refused here
        elif vector_rows.models_newest_first(self.store, self.id, self.name):
            name = self.default_model()
        else:
            name = self.objects.default_model()

        def run(ctx: JobContext) -> dict[str, Any]:
            return label_service.find_label_errors(self.store, ctx, self.row, name)

        job = self.workspace.jobs.submit("label-errors", self.name, {"model": name}, run, key=name)
        return self._finish(job.to_dict(), wait)

    def find_detection_label_errors(
        self, source: str, *, split: str | None = None, wait: bool = False
    ) -> dict[str, Any]:
        """Start cleanlab's detection check of the ground-truth boxes against the predictions
        of `source` (boxes likely missing, of the wrong class or badly placed): a score and
        verdict per image (`detection_issue` filter, `detection_quality` sort). `split`: only
        the images of that split, where the model ran on one split alone."""
        self._check_predictions(source, split)

        def run(ctx: JobContext) -> dict[str, Any]:
            return label_service.find_detection_label_errors(
                self.store, ctx, self.row, source, split
            )

        job = self.workspace.jobs.submit(
            "detection-label-errors",
            self.name,
            {"source": source, "split": split},
            run,
            key=source,
        )
        return self._finish(job.to_dict(), wait)

    def label_errors(self, examples: int = 12) -> dict[str, Any] | None:
        """Labels scored and flagged, and the worst flagged samples; None before a run."""
        return label_service.summary(self.store, self.id, examples)

    def health(self, examples: int = 12) -> dict[str, Any]:
        """What is wrong with the dataset, from every signal computed so far: per kind of
        problem its count, share, worst examples and the samples filter showing them all."""
        return health_service.health(self.store, self.row, examples)

    def export(
        self, out: str, format: str = "coco", *, wait: bool = False, **options: Any
    ) -> dict[str, Any]:
        """Start writing the dataset (or the samples `filters` choose) to the folder `out` as
        coco, yolo, voc, classification or parquet; options: filters, exclude_tags, images
        (copy, link, none), kind, source, min_score, dedupe, split_ratios, seed, overwrite
        (see `ExportOptions`), or view (a saved view's samples). The folder appears whole
        when the job ends, or not at all."""
        view = options.pop("view", None)
        if view is not None:  # the samples a saved view shows
            options["filters"] = self.views.filter(view)
        checked = export_service.ExportOptions(out, format, **options).checked(self.row["root"])
        files = self.workspace.source(self.row["root"])

        def run(ctx: JobContext) -> dict[str, Any]:
            return export_service.export_dataset(self.store, ctx, self.row, files, checked)

        job = self.workspace.jobs.submit(
            "export", self.name, checked.params(), run, key=checked.out
        )
        return self._finish(job.to_dict(), wait)

    def export_download(self, format: str = "coco", **options: Any) -> dict[str, Any]:
        """Start an export into a zip file kept under $VISOR_HOME/exports for download (the
        job's result names it; `GET /api/exports/{file}` serves it)."""
        folder = self.workspace.settings.home / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{self.name}-{format}-{stamp}-{secrets.token_hex(3)}"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.export(str(folder / safe), format, archive=True, **options)

    @property
    def views(self) -> view_service.Views:
        """Saved views: save(name, ...), list(), get(name), delete(name), filter(name)."""
        return view_service.Views(self)

    @property
    def edits(self) -> edit_service.Edits:
        """Label edits: set_class, delete, add, set_image_class, exclude, relabel,
        accept_suggestions; history, undo, redo, revert."""
        return edit_service.Edits(
            self.store, self.row, lambda: self.workspace.changes.record(self.name, "edits")
        )

    @property
    def objects(self) -> object_service.Objects:
        """The dataset's boxes as items: vectors, similar boxes, outliers, duplicates."""
        return object_service.Objects(self)

    @property
    def evaluations(self) -> evaluate_service.Evaluations:
        """The dataset's evaluations by name: list(), get(name), delete(name), ..."""
        return evaluate_service.Evaluations(self.store, self.row)

    # -- embeddings -----------------------------------------------------------------------

    def embed(
        self,
        model: str | None = None,
        *,
        device: str | None = None,
        precision: str | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        recompute: bool = False,
        quality: bool = True,
        objects: bool = False,
        kind: str = "gt",
        source: str | None = None,
        ray: str | None = None,
        ray_actors: int | None = None,
        ray_gpus: float | None = None,
        staging: str | None = None,
        backend: str | None = None,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start embedding every image without a vector from `model`; returns the job.
        With `quality` (the default) each image's quality is measured from the same decode.
        With `objects`, every box of `kind` (gt or prediction, of `source`) is embedded
        instead, as a crop of its image (see `ds.objects`). With `ray` ("local", "auto" or
        "ray://host:port") the work runs on a Ray cluster: `ray_actors` model actors with
        `ray_gpus` GPUs each, shards staged in `staging` (default: under the home folder).
        `backend` runs the model on a CPU with torch or openvino (default: the setting
        `embed_backend`, auto: the faster of the two, measured on a model's first use);
        precision "int8" is OpenVINO with int8 weights. Converted models and measurements
        are kept under home's `compiled/`.

        Asking again while that job runs returns the running job. With `wait`, returns the
        finished job and raises if it failed.
        """
        options = embed_service.EmbedOptions(
            model=model or self.workspace.settings.model,
            device=device,
            precision=precision,
            batch_size=batch_size,
            workers=workers,
            recompute=recompute,
            quality=quality,
            objects=objects,
            kind=kind,
            source=source,
            ray=ray,
            ray_actors=ray_actors,
            ray_gpus=ray_gpus,
            staging=staging,
            backend=backend or self.workspace.settings.embed_backend,
            cache_dir=str(self.workspace.settings.home / "compiled"),
        ).checked()
        if options.ray is not None and options.staging is None:
            home = str(self.workspace.settings.home.resolve())
            boxes = f"{kind}-{source}" if source else kind
            where = ray_embed_service.default_staging(
                home, self.id, options.model, boxes if objects else None
            )
            options = dataclasses.replace(options, staging=where)
        files = self.workspace.source(self.row["root"])

        def run(ctx: JobContext) -> dict[str, Any]:
            result = embed_service.embed_dataset(self.store, ctx, self.row, files, options)
            if objects:
                return result
            if result["embedded"] and self._wants_ann(result["model"]):
                result["index_job"] = self.build_index(result["model"])["id"]
            return result

        key = f"{options.model}:objects:{kind}:{source}" if objects else options.model
        job = self.workspace.jobs.submit("embed", self.name, options.params(), run, key=key)
        return self._finish(job.to_dict(), wait)

    def embeddings(self, model: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample ids (int64, ascending) and their vectors, an (n, d) float32 array."""
        model = self._model(model)
        ids, vectors = vector_rows.vectors(self.store, self.id, model)
        if not len(ids):
            raise NotFound(
                f"dataset {self.name!r} has no vectors from model {model!r} (run visor embed)"
            )
        return ids, vectors

    def embedding_status(self) -> dict[str, Any]:
        """Per model: dimension, vectors stored, unreadable images, complete or not, last job."""
        samples = int(self.row["num_samples"])
        jobs = self.embed_jobs()
        models = []
        for row in vector_rows.status(self.store, self.id):
            last = next(iter(self.embed_jobs(row["model"], jobs)), None)
            missing = max(samples - row["vectors"] - row["errors"], 0)
            models.append(
                {
                    **row,
                    "samples": samples,
                    "missing": missing,
                    "complete": missing == 0,
                    "last_job": last,
                }
            )
        running = [j for j in jobs if j["state"] in ("queued", "running")]
        newest = vector_rows.models_newest_first(self.store, self.id, self.name)
        return {
            "dataset": self.name,
            "samples": samples,
            "models": models,
            "running": running,
            "default_model": next(iter(newest), None),  # what commands use when given none
        }

    def embed_jobs(
        self, model: str | None = None, jobs: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """This dataset's embed jobs, newest first, only `model`'s if given (from `jobs` when
        they are already at hand)."""
        if jobs is None:
            jobs = self.workspace.jobs.list(dataset=self.name, kind="embed")
        return [j for j in jobs if model is None or (j["params"] or {}).get("model") == model]

    def embedding_errors(self, model: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """The images `model` could not embed, with the reason for each."""
        newest = vector_rows.models_newest_first(self.store, self.id, self.name)
        chosen = model or next(iter(newest), self.workspace.settings.model)
        return vector_rows.errors(self.store, self.id, chosen, limit=limit)

    # -- neighbours -----------------------------------------------------------------------

    def similar(
        self,
        sample_id: int,
        k: int = 20,
        model: str | None = None,
        filters: SampleFilter | None = None,
    ) -> list[dict[str, Any]]:
        """The k samples nearest to `sample_id` by cosine distance (itself excluded)."""
        check_k(k)
        self.sample(sample_id)
        index = self._index(model)
        vector = index.vector_of(sample_id)
        if vector is None:
            raise Conflict(
                f"sample {sample_id} has no vector from {self._model(model)!r} (its image could "
                "not be read, or embed has not reached it yet)"
            )
        found = index.query(vector, k, exclude=sample_id, allowed=self._allowed(filters))
        return self._describe(found)

    def similar_to_image(
        self,
        data: bytes,
        name: str,
        k: int = 20,
        model: str | None = None,
        filters: SampleFilter | None = None,
    ) -> list[dict[str, Any]]:
        """The k samples nearest to an image that is not in the dataset (embedded now with the
        same model)."""
        import torch

        from visor.embedding.models import load_model

        check_k(k)
        index = self._index(model)
        embedder = load_model(self._model(model))
        crop = embedder.preprocessing.prepare(data, name)
        vector = embedder.forward(torch.from_numpy(crop[None].copy())).cpu().numpy()[0]
        return self._describe(index.query(vector, k, allowed=self._allowed(filters)))

    def _model(self, model: str | None) -> str:
        """The model asked for, else the one this dataset was most recently embedded with
        (`VISOR_MODEL` is the default of `embed` alone)."""
        return model or self.default_model()

    def default_model(self) -> str:
        """The model this dataset has vectors from (the most recently embedded one when
        several); Conflict when it has none."""
        found = vector_rows.models_newest_first(self.store, self.id, self.name)
        if not found:
            raise Conflict(
                f"dataset {self.name!r} has no vectors yet: run embed first "
                f"(visor embed {self.name})"
            )
        return found[0]

    def _vectors_version(self, name: str) -> tuple[int, int]:
        """The version of `name`'s vectors here; Conflict when there are none yet."""
        version = vector_rows.version(self.store, self.id, name)
        if not version or not version[0]:
            raise Conflict(
                f"dataset {self.name!r} has no vectors from model {name!r}: run embed first "
                f"(visor embed {self.name} --model {name})"
            )
        return version

    def _index(self, model: str | None) -> Searcher:
        """The ANN index when the dataset is large enough and its index is current; exact
        search otherwise (and a stale or missing index is rebuilt in the background)."""
        name = self._model(model)
        version = self._vectors_version(name)
        if self._wants_ann(name, version[0]):
            path = self._ann_path(name)
            if AnnIndex.is_current(AnnIndex.stored_info(path), version):
                return self.workspace.indexes.get(
                    (self.id, name, "ann"), version, lambda: AnnIndex.load(path)
                )
            self.build_index(name)
        return self.workspace.indexes.get(
            (self.id, name, "exact"),
            version,
            lambda: VectorIndex.from_vectors(*vector_rows.vectors(self.store, self.id, name)),
        )

    def _wants_ann(self, model: str, count: int | None = None) -> bool:
        if count is None:
            version = vector_rows.version(self.store, self.id, model)
            count = version[0] if version else 0
        return count >= self.workspace.settings.ann_min_vectors

    def _ann_path(self, model: str) -> Path:
        slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in model)[:60]
        digest = hashlib.blake2s(model.encode(), digest_size=4).hexdigest()
        return self.workspace.settings.home / "indexes" / str(self.id) / f"{slug}-{digest}.faiss"

    def build_index(self, model: str | None = None, *, wait: bool = False) -> dict[str, Any]:
        """Start building the ANN index of `model`'s vectors (kept on disk and used for
        similarity search from `VISOR_ANN_MIN_VECTORS` vectors up); returns the job."""
        name = self._model(model)
        self._vectors_version(name)
        path = self._ann_path(name)

        def run(ctx: JobContext) -> dict[str, Any]:
            return search_service.build_ann(self.store, ctx, self.id, name, path)

        job = self.workspace.jobs.submit("index", self.name, {"model": name}, run, key=name)
        return self._finish(job.to_dict(), wait)

    def index_status(self, model: str | None = None) -> dict[str, Any]:
        """Which search serves `model`'s vectors (exact or ann) and the stored index, if any."""
        name = self._model(model)
        version = self._vectors_version(name)
        info = AnnIndex.stored_info(self._ann_path(name))
        current = AnnIndex.is_current(info, version)
        ann = self._wants_ann(name, version[0]) and current
        return {
            "model": name,
            "vectors": version[0],
            "search": "ann" if ann else "exact",
            "ann_min_vectors": self.workspace.settings.ann_min_vectors,
            "index": info,
            "index_current": current,
        }

    def _finish(self, job: dict[str, Any], wait: bool) -> dict[str, Any]:
        """The job, or with `wait` the finished job (raising if it failed)."""
        if not wait:
            return job
        job = self.workspace.jobs.wait(job["id"])
        if job["state"] == "failed":
            raise VisorError(job["error"] or f"{job['kind']} job failed")
        return job

    # -- duplicates and uniqueness --------------------------------------------------------

    def find_duplicates(
        self,
        model: str | None = None,
        threshold: float | None = None,
        *,
        exact_only: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start grouping exact copies (content hash) and near-duplicates (cosine similarity
        of `model`'s vectors ≥ `threshold`; None: the model's calibrated threshold, else one
        from the dataset's nearest-neighbour similarities); each sample's `duplicate_group`
        is set. Every member of a group is within the threshold of its kept representative."""
        threshold = analysis_service.check_threshold(threshold)
        name = None if exact_only else self._model(model)
        if name is not None:
            self._vectors_version(name)
        source = self.workspace.source(self.row["root"])

        def run(ctx: JobContext) -> dict[str, Any]:
            return analysis_service.find_duplicates(
                self.store, ctx, self.id, source, model=name, threshold=threshold
            )

        params = {"model": name, "threshold": threshold}
        job = self.workspace.jobs.submit("duplicates", self.name, params, run, key=str(name))
        return self._finish(job.to_dict(), wait)

    def duplicates(self, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """The duplicate groups of the last duplicates run, largest first, and its look-alike
        clusters."""
        return analysis_service.duplicates_report(self.store, self.id, offset=offset, limit=limit)

    def compute_uniqueness(
        self,
        model: str | None = None,
        k: int = analysis_service.DEFAULT_UNIQUENESS_K,
        *,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start scoring every embedded sample's uniqueness in [0, 1] (the `uniqueness`
        field: sortable and filterable)."""
        name = self._model(model)
        analysis_service.check_uniqueness_k(k)
        self._vectors_version(name)

        def run(ctx: JobContext) -> dict[str, Any]:
            return analysis_service.compute_uniqueness(self.store, ctx, self.id, model=name, k=k)

        job = self.workspace.jobs.submit(
            "uniqueness", self.name, {"model": name, "k": k}, run, key=name
        )
        return self._finish(job.to_dict(), wait)

    def filtered_ids(self, filters: SampleFilter) -> np.ndarray:
        """The ids (int64, ascending) of the samples matching `filters`."""
        return sample_rows.filtered_ids(self.store, self.id, filters)

    def _allowed(self, filters: SampleFilter | None) -> np.ndarray | None:
        if filters is None or filters.is_empty():
            return None
        return self.filtered_ids(filters)

    def _describe(self, found: list[tuple[int, float]]) -> list[dict[str, Any]]:
        names = sample_rows.paths_of(self.store, self.id, [i for i, _ in found])
        return [{"sample_id": i, "distance": round(d, 6), "path": names.get(i)} for i, d in found]

    # -- maps ---------------------------------------------------------------------------

    def make_map(
        self,
        model: str | None = None,
        method: str = "umap",
        params: dict[str, Any] | None = None,
        *,
        uniqueness: bool = True,
        objects: bool = False,
        wait: bool = False,
    ) -> dict[str, Any]:
        """Start laying out `model`'s vectors in 2D (`umap`, `pca` or `tsne`); returns the job.
        The new map becomes the dataset's default. With `uniqueness` (the default) the job
        then scores every sample's uniqueness too. With `objects`, the box vectors are laid
        out instead (a point per box; `visor embed --objects` first)."""
        checked = map_service.check_params(method, params)
        if objects:
            model = model or self.objects.default_model()
        else:
            model = self._model(model)
            self._vectors_version(model)

        def run(ctx: JobContext) -> dict[str, Any]:
            result = map_service.make_map(
                self.store, ctx, self.id, model, method, checked, objects=objects
            )
            if uniqueness and not objects:
                message = ctx.job.message
                result["uniqueness"] = analysis_service.compute_uniqueness(
                    self.store, ctx, self.id, model=model, k=analysis_service.DEFAULT_UNIQUENESS_K
                )
                ctx.job.message = message
            if self.workspace.serving:  # the page that asked for the map will want its points
                self.map_points_stream(None)
            return result

        params_row = {"model": model, "method": method, "objects": objects, **checked}
        job = self.workspace.jobs.submit(
            "map", self.name, params_row, run, key=f"{model}:{method}:{objects}"
        ).to_dict()
        return self.workspace.jobs.wait(job["id"]) if wait else job

    def maps(self) -> list[dict[str, Any]]:
        """Every map, each with a `warning` when its vectors came from random weights."""
        return [with_weights_warning(m) for m in map_rows.list_maps(self.store, self.id)]

    def map(self, map_id: int | None = None) -> dict[str, Any]:
        """One map, or the default one."""
        if map_id is None:
            found = next((m for m in self.maps() if m["is_default"]), None)
            if found is None:
                raise NotFound(f"dataset {self.name!r} has no map yet (run visor map)")
            return found
        row = map_rows.get(self.store, self.id, map_id)
        if row is None:
            raise NotFound(f"map {map_id} not found in dataset {self.name!r}")
        row = with_weights_warning(row)
        return row

    def map_points(self, map_id: int | None = None) -> pa.Table:
        """sample_id, x, y, split, first class and first tag of every point of a map (a map of
        objects: label_id too, and the box's class)."""
        found = self.map(map_id)
        return map_rows.points(self.store, self.id, found["id"], objects=found["objects"])

    def map_points_stream(self, map_id: int | None = None) -> tuple[bytes, int]:
        """A map's points as Arrow IPC bytes (see `points_stream`) and their number. Kept in
        memory until the dataset's tags change (the only thing in them that can): at 1M points
        encoding takes ~0.25 s, more while other requests run."""
        found = self.map(map_id)
        cache = self.workspace.points
        key = (self.id, int(found["id"]), cache.version(self.id))
        body = cache.get(key)
        if body is None:
            with cache.encoding:  # one at a time: a second asker waits for the first's bytes
                body = cache.get(key)
                if body is None:
                    body = map_service.points_stream(self.map_points(found["id"]))
                    cache.put(key, body)
        return body, int(found["num_points"])

    def set_default_map(self, map_id: int) -> dict[str, Any]:
        self.map(map_id)
        map_rows.set_default(self.store, self.id, map_id)
        return self.map(map_id)

    # -- images -------------------------------------------------------------------------

    def image_bytes(self, sample_id: int) -> tuple[bytes, str]:
        """The original file's bytes and its path."""
        sample = self.sample(sample_id)
        return self.workspace.source(self.row["root"]).read_bytes(sample["path"]), sample["path"]

    def thumbnail(self, sample_id: int) -> tuple[Path, str]:
        """The cached thumbnail file (made on first request) and its ETag."""
        sample = self.sample(sample_id)
        size = self.workspace.settings.thumbnail_size
        path = self._thumbnail_path(sample_id)
        etag = hashlib.blake2s(
            f"{self.id}:{sample_id}:{size}:{sample['path']}:{sample['size_bytes']}".encode(),
            digest_size=8,
        ).hexdigest()
        if not path.exists():
            data, name = self.image_bytes(sample_id)
            write_atomically(path, make_thumbnail(data, name, size))
        return path, etag

    def thumbnail_bytes(self, sample_id: int) -> bytes | None:
        """The thumbnail's JPEG bytes; None when the image cannot be read."""
        try:
            return self.thumbnail(sample_id)[0].read_bytes()
        except VisorError:
            return None

    def make_thumbnails(self, ctx: JobContext) -> dict[str, Any]:
        """Make every missing thumbnail now (a job phase); unreadable images are counted."""
        todo = sample_rows.paths(self.store, self.id)
        ctx.phase("making thumbnails", total=len(todo))
        source = self.workspace.source(self.row["root"])
        size = self.workspace.settings.thumbnail_size
        failed = 0
        for done, (sample_id, relpath) in enumerate(todo, start=1):
            path = self._thumbnail_path(sample_id)
            if not path.exists():
                try:
                    data = make_thumbnail(source.read_bytes(relpath), relpath, size)
                except VisorError:
                    failed += 1
                else:
                    write_atomically(path, data)
            if done % 50 == 0 or done == len(todo):
                ctx.progress(done)
                ctx.check_cancelled()
        return {"made": len(todo) - failed, "failed": failed}

    def _thumbnail_path(self, sample_id: int) -> Path:
        size = self.workspace.settings.thumbnail_size
        return self.workspace.settings.thumbnails_dir / str(self.id) / f"{sample_id}-{size}.jpg"

    def _known(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        wanted = np.asarray(ids, dtype=np.int64)
        if len(wanted) > 1 and not (wanted[1:] > wanted[:-1]).all():  # else sorted and unique
            wanted = np.sort(wanted)
            wanted = wanted[np.concatenate(([True], wanted[1:] != wanted[:-1]))]
        if not len(wanted):
            raise InvalidInput("ids: give at least one sample id")
        beyond = wanted[(wanted < 0) | (wanted > np.iinfo(np.int32).max)]  # not sample ids
        missing = beyond[:10].tolist() or sample_rows.missing_ids(self.store, self.id, wanted)
        if missing:
            raise NotFound(f"samples not found in dataset {self.name!r}: {missing}")
        return wanted

    # -- selections ---------------------------------------------------------------------

    def select(self, ids: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """Keep a set of sample ids (e.g. a lasso on the map) under a token that filters,
        tags and pages can name instead of sending the ids again."""
        known = self._known(ids)
        token = self.workspace.selections.add(self.id, known)
        return {"selection": token, "count": len(known)}

    def selection(self, token: str) -> np.ndarray:
        return self.workspace.selections.get(self.id, token)


def _check_tags(tags: list[str]) -> list[str]:
    clean = [t.strip() for t in tags]
    if not clean or any(not t or len(t) > 64 for t in clean):
        raise InvalidInput("tags: give 1 or more tags of 1-64 characters")
    return clean
