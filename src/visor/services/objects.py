"""Objects ("patches"): every box embedded as a crop of its image, and what the box vectors
give: similar boxes, the least typical boxes (outliers) and near-identical boxes.

The embed job cuts all of an image's crops from one decode and batches them like images;
vectors are keyed by label id, so a box keeps its vector while it exists. Likely label
errors of boxes are scored with the image labels' (`services/labels.py`).
"""

from __future__ import annotations

import hashlib
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from visor.config import Settings
from visor.embedding.crops import box_problem
from visor.embedding.models import with_weights_warning
from visor.embedding.pipeline import ImageItem, embed_images
from visor.errors import Conflict, InvalidInput, NotFound
from visor.media.thumbnails import make_crop, write_atomically
from visor.services.analysis import DEFAULT_UNIQUENESS_K, similar_pairs, uniqueness_from
from visor.services.grouping import default_threshold, duplicate_groups, outlier_threshold
from visor.services.jobs import JobContext
from visor.services.neighbours import GRAPH_NEIGHBOURS, GRAPH_PROBES
from visor.services.search import IndexCache, VectorIndex, check_k, neighbour_graph, unit_rows
from visor.sources import Source
from visor.store import Store
from visor.store import embeddings as vector_rows
from visor.store import objects as object_rows

if TYPE_CHECKING:
    from visor.services.embed import EmbedParams

REPORT_LIMIT = 100  # skipped boxes listed in the job result; the count is exact


def embed_objects(
    store: Store, ctx: JobContext, dataset: dict[str, Any], source: Source, options: EmbedParams
) -> dict[str, Any]:
    """The embed job over boxes: every box of `options.kind` (and `options.source`) without a
    vector from the model. Boxes that can't give a crop are skipped with a reason."""
    ctx.phase(f"loading {options.model} on {options.device}")
    from visor.services.embed import model_for  # that module runs this one

    embedder = model_for(options)
    vector_rows.ensure_model(store, embedder.name, embedder.dim)
    object_rows.ensure_table(store, embedder.dim)
    dataset_id = int(dataset["id"])
    kind, only = options.kind, options.source
    total = object_rows.count_boxes(store, dataset_id, kind, only)
    if not total:
        what = "boxes"
        if kind == "prediction":
            what = "prediction boxes" + (f" from {only!r}" if only else "")
        raise InvalidInput(f"dataset {dataset['name']!r} has no {what} to embed")
    todo = object_rows.missing(store, dataset_id, embedder.name, embedder.dim, kind, only)
    object_rows.clear_errors(store, dataset_id, embedder.name, [t[0] for t in todo])
    already = total - len(todo)
    ctx.phase(
        f"embedding {len(todo)} boxes with {embedder.name} on {embedder.device} "
        f"({embedder.precision})" + (f"; {already} already done" if already else ""),
        total=len(todo),
    )
    sample_of: dict[int, int] = {}
    skipped: list[tuple[int, int, str]] = []
    items: list[ImageItem] = []
    by_image: dict[int, tuple[str, list[tuple[int, tuple[float, float, float, float]]]]] = {}
    for label_id, sample_id, path, x, y, w, h in todo:
        sample_of[label_id] = sample_id
        problem = box_problem(*(float("nan") if v is None else float(v) for v in (x, y, w, h)))
        if problem:
            skipped.append((label_id, sample_id, f"{path}: {problem}"))
            continue
        by_image.setdefault(sample_id, (path, []))[1].append((label_id, (x, y, w, h)))
    for sample_id, (path, regions) in by_image.items():
        items.append(
            ImageItem(sample_id, path, partial(source.read_bytes, path), regions=tuple(regions))
        )
    report: list[dict[str, Any]] = []

    def note(failed: list[tuple[int, int, str]]) -> None:
        for label_id, sample_id, reason in failed:
            if len(report) < REPORT_LIMIT:
                report.append({"label_id": label_id, "sample_id": sample_id, "reason": reason})

    object_rows.write_batch(
        store,
        dataset_id,
        embedder.name,
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        np.zeros((0, embedder.dim), np.float32),
        skipped,
        job_id=ctx.job.id,
    )
    note(skipped)
    done, embedded, failed_count = len(skipped), 0, len(skipped)
    ctx.progress(done)
    started = time.monotonic()
    assert options.batch_size is not None
    batches = embed_images(embedder, items, batch_size=options.batch_size, workers=options.workers)
    try:
        for batch in batches:
            finite = np.isfinite(batch.vectors).all(axis=1)
            keys = batch.keys[finite]
            failed = [(k, sample_of[k], reason) for k, reason in batch.failed]
            failed += [
                (int(k), sample_of[int(k)], "the model gave NaN or infinite values for this box")
                for k in batch.keys[~finite]
            ]
            samples = np.asarray([sample_of[int(k)] for k in keys], dtype=np.int64)
            object_rows.write_batch(
                store,
                dataset_id,
                embedder.name,
                keys,
                samples,
                batch.vectors[finite],
                failed,
                job_id=ctx.job.id,
            )
            note(failed)
            done += batch.count
            embedded += len(keys)
            failed_count += len(failed)
            ctx.progress(done)
            ctx.check_cancelled()
    finally:
        batches.close()
    elapsed = time.monotonic() - started
    return {
        "objects": True,
        "kind": kind,
        "source": only,
        "model": embedder.name,
        "dim": embedder.dim,
        "device": embedder.device,
        "precision": embedder.precision,
        "boxes": total,
        "images": len(items),
        "embedded": embedded,
        "skipped_existing": total - len(todo),
        "failed_count": failed_count,
        "failed": report,
        "seconds": round(elapsed, 2),
        "boxes_per_s": round((done - len(skipped)) / elapsed, 2) if elapsed > 0 else None,
    }


def analyse_objects(
    store: Store, ctx: JobContext, dataset_id: int, model: str, threshold: float | None
) -> dict[str, Any]:
    """The object analysis job: one neighbour search over the box vectors gives each box's
    uniqueness (outliers: above median + 3 x 1.4826 x MAD of the scores) and the groups of
    near-identical boxes (every member within the threshold of its kept box, the largest)."""
    started = time.monotonic()
    ctx.phase(f"loading {model} box vectors")
    found = object_rows.vectors(store, dataset_id, model)
    n = len(found)
    if n < 3:
        raise InvalidInput(f"the object analysis needs at least 3 embedded boxes; there are {n}")
    ctx.phase("finding each box's nearest neighbours", total=n)
    rows, sims = neighbour_graph(
        unit_rows(found.vectors), GRAPH_NEIGHBOURS, ctx.progress, probes=GRAPH_PROBES
    )
    ctx.check_cancelled()
    uniqueness = uniqueness_from(sims[:, :DEFAULT_UNIQUENESS_K])
    cut = outlier_threshold(uniqueness)
    outlier = uniqueness > cut if cut is not None else np.zeros(n, bool)
    nearest = sims[:, 0] if sims.shape[1] else np.zeros(0, np.float32)
    rule = "given"
    if threshold is None:
        threshold, rule = default_threshold(model, nearest)
    pairs = similar_pairs(rows, sims, threshold)
    boxes = object_rows.boxes(store, dataset_id, found.label_ids.tolist())
    area = np.asarray([_area(boxes[int(i)]["box"]) for i in found.label_ids])
    order = np.lexsort((found.label_ids, -area))  # the largest box of a group is kept
    leader = duplicate_groups(n, pairs, order)
    numbers: dict[int, int] = {}
    for pos in np.flatnonzero(leader >= 0).tolist():
        numbers.setdefault(int(leader[pos]), len(numbers) + 1)
    groups = pa.array([numbers[int(g)] if g >= 0 else None for g in leader.tolist()], pa.int32())
    object_rows.save_scores(
        store,
        dataset_id,
        model,
        pa.table(
            {
                "label_id": pa.array(found.label_ids),
                "sample_id": pa.array(found.sample_ids.astype(np.int32)),
                "uniqueness": pa.array(uniqueness),
                "outlier": pa.array(outlier),
                "duplicate_group": groups,
            }
        ),
    )
    return with_weights_warning(
        {
            "model": model,
            "boxes": n,
            "outliers": int(outlier.sum()),
            "outlier_threshold": None if cut is None else round(cut, 6),
            "duplicate_groups": len(numbers),
            "boxes_in_duplicate_groups": int((leader >= 0).sum()),
            "threshold": threshold,
            "threshold_rule": rule,
            "seconds": round(time.monotonic() - started, 2),
        }
    )


def _area(box: list[float | None]) -> float:
    w, h = box[2], box[3]
    return float(w or 0) * float(h or 0)


def default_object_model(store: Store, dataset: dict[str, Any]) -> str:
    """The model the boxes were embedded with (the most recently embedded of several)."""
    present = {row["model"] for row in object_rows.status(store, dataset["id"]) if row["vectors"]}
    for model in vector_rows.models_newest_first(store, dataset["id"], dataset["name"]):
        if model in present:
            return model
    if present:
        return sorted(present)[0]
    raise Conflict(
        f"dataset {dataset['name']!r} has no box vectors yet: run "
        f"visor embed {dataset['name']} --objects"
    )


def has_object_vectors(store: Store, dataset_id: int, model: str) -> bool:
    return object_rows.version(store, dataset_id, model)[0] > 0


def similar_boxes(
    store: Store,
    indexes: IndexCache,
    dataset: dict[str, Any],
    label_id: int,
    k: int,
    model: str | None,
) -> list[dict[str, Any]]:
    """The k boxes nearest to box `label_id` by cosine distance (itself excluded)."""
    check_k(k)
    dataset_id = dataset["id"]
    name = model or default_object_model(store, dataset)
    version = object_rows.version(store, dataset_id, name)
    index = indexes.get(
        (dataset_id, name, "objects"),
        version,
        lambda: VectorIndex.from_vectors(
            *_ids_and_vectors(object_rows.vectors(store, dataset_id, name))
        ),
    )
    vector = index.vector_of(label_id)
    if vector is None:
        if not object_rows.boxes(store, dataset_id, [label_id]):
            raise NotFound(f"label {label_id} not found in dataset {dataset['name']!r}")
        raise Conflict(
            f"box {label_id} has no vector from {name!r} (not a box, skipped, or not "
            "embedded yet: visor embed --objects)"
        )
    found = index.query(vector, k, exclude=label_id)
    boxes = object_rows.boxes(store, dataset_id, [i for i, _ in found])
    return [{**boxes[i], "distance": round(d, 6)} for i, d in found if i in boxes]


def box(store: Store, dataset: dict[str, Any], label_id: int) -> dict[str, Any]:
    """One box: its sample, class, kind, source and (x, y, w, h)."""
    found = object_rows.boxes(store, dataset["id"], [label_id]).get(label_id)
    if found is None or found["box"][0] is None:
        raise NotFound(f"box {label_id} not found in dataset {dataset['name']!r}")
    return found


def crop(
    store: Store, settings: Settings, source: Source, dataset: dict[str, Any], label_id: int
) -> tuple[Path, str]:
    """The cached JPEG of a box's crop (made on first request) and its ETag."""
    from visor.services.samples import sample

    found = box(store, dataset, label_id)
    size = settings.thumbnail_size
    path_of_image = sample(store, dataset, found["sample_id"])["path"]
    path = settings.thumbnails_dir / str(dataset["id"]) / "objects" / f"{label_id}.jpg"
    etag = hashlib.blake2s(
        f"{dataset['id']}:{label_id}:{size}:{found['box']}:{path_of_image}".encode(),
        digest_size=8,
    ).hexdigest()
    if not path.exists():
        data = source.read_bytes(path_of_image)
        write_atomically(path, make_crop(data, path_of_image, tuple(found["box"]), size))
    return path, etag


def report(store: Store, dataset_id: int, examples: int = 12) -> dict[str, Any] | None:
    """The last object analysis: boxes scored, outliers, duplicate groups, worst boxes."""
    found = object_rows.scores_summary(store, dataset_id, examples)
    return with_weights_warning(found) if found else None


def _ids_and_vectors(found: object_rows.ObjectVectors) -> tuple[np.ndarray, np.ndarray]:
    return found.label_ids, found.vectors
