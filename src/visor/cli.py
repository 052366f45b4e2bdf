"""The `visor` command line."""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from visor.client import (
    RemoteWorkspace,
    announce_server,
    find_server,
    open_workspace,
)
from visor.config import get_settings
from visor.errors import InvalidInput, VisorError
from visor.evaluation.matching import AREA_RANGES
from visor.evaluation.metrics import SUMMARY
from visor.services.analysis import DEFAULT_UNIQUENESS_K
from visor.services.jobs import FINAL_STATES
from visor.workspace import Workspace

app = typer.Typer(
    help="Visor: see and fix image datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# No console markup: messages carry file names, class names and reasons such as
# "bbox must be [x, y, width, height]" that markup would eat; styles go through Text.
console = Console(stderr=True, soft_wrap=True, markup=False)
out = Console(soft_wrap=True, markup=False)


def _styled(prefix: str, style: str, message: str) -> Text:
    return Text.assemble((prefix, style), " ", message)


F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Print VisorErrors as one line and exit 1; Ctrl-C exits 130, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VisorError as e:
            console.print(_styled("error:", "red", e.message), highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def follow(workspace: Workspace | RemoteWorkspace, job: dict[str, Any]) -> dict[str, Any]:
    """Show a job's progress until it ends; Ctrl-C cancels it. Exits 1 if the job failed."""
    columns = [
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}", markup=False),
        TimeRemainingColumn(),
    ]
    # Transient: once the job ends its command prints what it did, and a bar left behind
    # would only repeat it (or show a last phase that had no count, as 0/?). Not drawn when
    # stderr is no terminal (a log, a pipe): there it would only be its last frame.
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task(job["kind"], total=None, rate="")
        try:
            while job["state"] not in FINAL_STATES:
                time.sleep(0.1)
                job = workspace.jobs.get(job["id"])
                rate = f"{job['rate']:.1f}/s" if job.get("rate") else ""
                progress.update(
                    task,
                    description=job["message"] or job["kind"],
                    completed=job["done"],
                    total=job["total"],
                    rate=rate,
                )
        except KeyboardInterrupt:
            workspace.jobs.cancel(job["id"])
            job = workspace.jobs.wait(job["id"])
    if job["state"] == "failed":
        raise VisorError(job["error"] or "job failed")
    if job["state"] == "cancelled":
        console.print("cancelled; finished work was kept")
        raise typer.Exit(130)
    return job


def _warning(result: dict[str, Any]) -> None:
    """A result's `warning` (vectors from random weights), said plainly."""
    if result.get("warning"):
        out.print(_styled("warning:", "bold yellow", result["warning"]), highlight=False)


def _problems(title: str, count: int, lines: list[str], where: str) -> None:
    """`count` problems under `title`: the first 20 of `lines`, then where to see the rest."""
    if not count:
        return
    console.print(Text(f"{title}:", style="yellow"))
    for line in lines[:20]:
        console.print(f"  {line}", highlight=False)
    if count > 20:
        console.print(f"  ... and {count - 20} more ({where})")


def _report(result: dict[str, Any]) -> None:
    count = result.get("skipped_count") or 0
    _problems(
        f"skipped {count} record(s)",
        count,
        [f"{item['path']}: {item['reason']}" for item in result.get("skipped") or []],
        "visor info NAME --skipped",
    )


# The option of every command that reads vectors.
VectorsModel = Annotated[
    str | None,
    typer.Option(help="whose vectors (default: the dataset's most recently embedded model)"),
]


def _workspace() -> Workspace | RemoteWorkspace:
    """The workspace: through a running `visor serve` (the store's one writer) when there is
    one for this VISOR_HOME, else the store itself."""
    return open_workspace()


@app.command()
@friendly
def ingest(
    path: Annotated[str, typer.Argument(help="dataset root: folder, s3://… or gs://…")],
    name: Annotated[str, typer.Option("--name", "-n", help="name for the dataset")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="coco|yolo|voc|classification|images")
    ] = None,
    replace: Annotated[bool, typer.Option(help="replace a dataset of the same name")] = False,
    thumbnails: Annotated[
        bool, typer.Option(help="make all thumbnails now instead of on first view")
    ] = False,
) -> None:
    """Read a dataset's images and labels into the store."""
    with _workspace() as ws:
        job = follow(ws, ws.ingest(path, name, fmt=fmt, replace=replace, thumbnails=thumbnails))
        result = job["result"]
        out.print(
            Text.assemble(
                "ingested ",
                (name, "bold"),
                f": {result['samples']} samples, {result['labels']} labels ({result['format']})",
            )
        )
        _report(result)


@app.command("import-predictions")
@friendly
def import_predictions(
    name: str,
    path: Annotated[
        Path,
        typer.Argument(
            help="COCO results .json (ultralytics' predictions.json too), a folder of YOLO .txt "
            "files (class cx cy w h score), or a .parquet/.csv table (file_name, class, x, y, w, "
            "h, score)"
        ),
    ],
    source: Annotated[str, typer.Option(help="name of the model (or run) that made them")],
    format: Annotated[
        str | None, typer.Option("--format", help="coco|yolo|table (default: from the path)")
    ] = None,
    replace: Annotated[bool, typer.Option(help="replace an existing source of this name")] = False,
    names: Annotated[
        Path | None,
        typer.Option(help="YOLO: the model's data.yaml when the dataset has no class indices"),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="COCO results: the split whose annotation file's image ids they use (where "
            "each split's file numbers its images alike, as Roboflow's exports do)"
        ),
    ] = None,
) -> None:
    """Add a model's predictions to a dataset, as a named source."""
    with _workspace() as ws:
        result = ws.dataset(name).import_predictions(
            str(path),
            source,
            format=format,
            replace=replace,
            names=str(names) if names else None,
            split=split,
        )
        out.print(
            f"imported {result['predictions']} predictions on {result['images']} images "
            f"from {source} into {name}",
            highlight=False,
        )
        _report(result)


@app.command()
@friendly
def evaluate(
    name: str,
    source: Annotated[str, typer.Option(help="the prediction source to evaluate")],
    evaluation: Annotated[
        str | None, typer.Option("--name", help="the evaluation's name (default: the source)")
    ] = None,
    iou: Annotated[
        float, typer.Option(help="IoU of per-box outcomes, counts and the confusion matrix")
    ] = 0.5,
    iou_thresholds: Annotated[
        str, typer.Option(help="IoU thresholds of AP/AR: start:stop:step or a list")
    ] = "0.5:0.95:0.05",
    classwise: Annotated[
        bool, typer.Option("--classwise/--agnostic", help="match boxes of the same class only")
    ] = True,
    max_dets: Annotated[int, typer.Option(help="predictions counted per image and class")] = 100,
    split: Annotated[
        str | None,
        typer.Option(help="only the images of this split (the one the model was run on)"),
    ] = None,
    worst: Annotated[int, typer.Option(help="how many of the worst classes to list")] = 5,
) -> None:
    """Evaluate a prediction source COCO-style: every box TP/FP/FN, AP/AR, confusion matrix."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        job = dataset.evaluate(
            source,
            name=evaluation,
            iou=iou,
            iou_thresholds=iou_thresholds,
            classwise=classwise,
            max_dets=max_dets,
            split=split,
        )
        result = follow(ws, job)["result"]
        stats = result["summary"]
        thresholds = iou_thresholds if iou_thresholds != "0.5:0.95:0.05" else "0.50:0.95"
        limits = (1, 10, max_dets)
        areas = list(AREA_RANGES)
        for key, kind, at_iou, area, limit in SUMMARY:  # as pycocotools prints them
            title = "Average Precision  (AP)" if kind == "ap" else "Average Recall     (AR)"
            span = thresholds if at_iou is None else f"{at_iou:.2f}"
            out.print(
                f" {title} @[ IoU={span:<9} | area={areas[area]:>6} | "
                f"maxDets={limits[limit]:>3} ] = {stats[key]:0.3f}",
                highlight=False,
            )
        counts = result["counts"]
        out.print(
            f"at IoU {iou}: {counts['tp']} true positives, {counts['fp']} false positives, "
            f"{counts['fn']} missed ({counts['predictions']} predictions, {counts['gt']} boxes"
            + (f" in split {split}" if split else "")
            + ")",
            highlight=False,
        )
        if result["worst_classes"] and worst > 0:
            out.print("worst classes (AP@[.5:.95], AP50, precision, recall, FP, FN):")
            for row in result["worst_classes"][:worst]:
                out.print(
                    f"  {row['class']:<20} {row['ap']:.3f}  {_num(row['ap50'])}  "
                    f"{_num(row['precision'])}  {_num(row['recall'])}  "
                    f"{row['fp']:>6} {row['fn']:>6}",
                    highlight=False,
                )
        where = f"?dataset={quote(name)}&eval={quote(result['evaluation'])}&tab=evaluation"
        url = ws.info.url.rstrip("/") if isinstance(ws, RemoteWorkspace) else None
        out.print(
            f"see the boxes: {url}/{where}"
            if url
            else f"see the boxes: visor serve, then /{where}",
            highlight=False,
        )


@app.command()
@friendly
def quality(
    name: str,
    examples: Annotated[int, typer.Option(help="sample ids listed per issue")] = 5,
) -> None:
    """Measure every image (brightness, blur, entropy, colour, size) and list the issues."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        result = follow(ws, dataset.compute_quality())["result"]
        for problem in result["failed"][:20]:
            out.print(f"  could not read sample {problem['sample_id']}: {problem['reason']}")
        found = dataset.quality(examples)
        out.print(f"{found['measured']} of {found['samples']} images measured", highlight=False)
        for row in found["issues"]:
            listed = ", ".join(str(i) for i in row["examples"])
            more = f": {listed}" if listed else ""
            out.print(
                f"  {row['issue']:<17} {row['count']:>7} ({row['share']:.1%}){more}",
                highlight=False,
            )
        out.print("see them: filter by image quality in the UI, or ?quality=<issue> on /samples")


@app.command("label-errors")
@friendly
def label_errors(
    name: str,
    model: VectorsModel = None,
    examples: Annotated[int, typer.Option(help="worst flagged samples to list")] = 10,
    predictions: Annotated[
        str | None,
        typer.Option(help="instead: check the boxes against this prediction source (cleanlab)"),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="with --predictions: only this split's images (the model's run)"),
    ] = None,
) -> None:
    """Find likely wrong labels (cleanlab).

    Each image's (and each box's) label is weighed against its neighbours' labels; with
    --predictions, cleanlab's detection check weighs the boxes against a model's boxes."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        if predictions is not None:
            _detection_report(ws, dataset, predictions, examples, split)
            return
        if split is not None:
            raise InvalidInput("--split goes with --predictions (the images a model ran on)")
        result = follow(ws, dataset.find_label_errors(model))["result"]
        _warning(result)
        out.print(
            f"{result['flagged']} of {result['scored']} labels likely wrong "
            f"({result['model']}, {result['seconds']} s)",
            highlight=False,
        )
        if result["classes_with_one_example"]:
            lonely = ", ".join(result["classes_with_one_example"])
            out.print(f"not scored (one example, nothing to compare with): {lonely}")
        if result["not_embedded"]:
            out.print(f"not scored (no vector yet): {result['not_embedded']} labels")
        found = dataset.label_errors(examples) or {"examples": []}
        for sample_id in found["examples"]:
            for label in dataset.labels(sample_id):
                quality = label.get("label_quality")
                if quality and quality["issue"]:
                    out.print(
                        f"  sample {sample_id}: labelled {label['class']}; its neighbours say "
                        f"{quality['suggested']} (quality {quality['quality']:.3f})",
                        highlight=False,
                    )


def _detection_report(ws: Any, dataset: Any, source: str, examples: int, split: str | None) -> None:
    result = follow(ws, dataset.find_detection_label_errors(source, split=split))["result"]
    boxes = result["boxes_flagged"]
    out.print(
        f"{result['flagged']} of {result['images']} images"
        + (f" of split {split}" if split else "")
        + " flagged by cleanlab's detection "
        f"check against {source} ({result['seconds']} s): {boxes['overlooked']} boxes likely "
        f"missing, {boxes['swap']} likely of the wrong class, {boxes['badloc']} likely badly "
        "placed",
        highlight=False,
    )
    found = (dataset.label_errors(examples) or {}).get("detection") or {"examples": []}
    words = {
        "overlooked": "a box may be missing (the model found a {cls})",
        "swap": "this {cls} box may be of another class",
        "badloc": "this {cls} box may be badly placed",
    }
    for sample_id in found["examples"]:
        check = dataset.sample(sample_id).get("detection_check") or {"boxes": []}
        for box in check["boxes"]:
            said = words[box["signal"]].format(cls=box["class"])
            out.print(
                f"  sample {sample_id}: {said} (box {box['label_id']}, score {box['score']:.3f})",
                highlight=False,
            )


@app.command()
@friendly
def health(
    name: str,
    html: Annotated[
        Path | None, typer.Option(help="also write the report as one HTML file, images inside")
    ] = None,
    examples: Annotated[int, typer.Option(help="worst examples per problem")] = 8,
) -> None:
    """What is wrong with a dataset: duplicates, leaks across splits, outliers, image quality."""
    from visor.services import health_html

    with _workspace() as ws:
        dataset = ws.dataset(name)
        report = dataset.health(examples)
        out.print(f"health of {name} ({report['samples']:,} samples)", highlight=False)
        for row in report["rows"]:
            if row["count"] is None:
                out.print(f"  {row['title']:<44} not computed: {row['todo']}", highlight=False)
                continue
            ids = ", ".join(str(i) for i in row.get("examples", [])[:examples])
            mark = f" [{row['note']}]" if row.get("note") else ""
            out.print(
                f"  {row['title']:<44} {row['count']:>7} ({row['share']:.1%}){mark}"
                + (f"  e.g. {ids}" if ids else ""),
                highlight=False,
            )
        for number, note in enumerate(report["notes"], 1):
            out.print(_styled(f"[{number}] warning:", "bold yellow", note), highlight=False)
        if html is not None:
            health_html.write(html, report, dataset.thumbnail_bytes)
            out.print(f"wrote {html}", highlight=False)


@app.command("evaluations")
@friendly
def list_evaluations(name: str) -> None:
    """A dataset's evaluations side by side: source, split, IoU, AP, AP50, AP75, P and R."""
    with _workspace() as ws:
        found = ws.dataset(name).evaluations.list()
        if not found:
            out.print(f"no evaluations of {name} yet (visor evaluate {name} --source S)")
            return
        # Short headings: the nine columns fit 80 characters whole.
        table = Table("name", "source", "split", "IoU", "AP", "AP50", "AP75", "prec.", "recall")
        for e in found:
            stats, counts = e["summary"], e["counts"]
            table.add_row(
                e["name"],
                e["source"],
                e["params"].get("split") or "all",
                str(e["params"].get("iou")),
                *(_num(stats.get(k)) for k in ("AP", "AP50", "AP75")),
                _num(counts.get("precision")),
                _num(counts.get("recall")),
            )
        out.print(table)


def _num(value: float | None) -> str:
    return "  -  " if value is None or value < 0 else f"{value:.3f}"


@app.command()
@friendly
def embed(
    name: str,
    model: Annotated[
        str | None,
        typer.Option(help="dinov2-small|base|large|giant, random:<name>, a folder or a hub id"),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="images per batch (auto)")] = None,
    device: Annotated[str | None, typer.Option(help="auto|cuda|cuda:N|mps|cpu")] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="auto|fp32|fp16|bf16|int8 (int8: OpenVINO on a CPU, int8 weights)"),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="decoding threads (auto)")] = None,
    recompute: Annotated[bool, typer.Option(help="embed every image again")] = False,
    quality: Annotated[
        bool, typer.Option(help="measure image quality from the same decode (visor quality)")
    ] = True,
    objects: Annotated[
        bool, typer.Option("--objects", help="embed every box (a crop of its image) instead")
    ] = False,
    kind: Annotated[str, typer.Option(help="with --objects: gt|prediction boxes")] = "gt",
    source: Annotated[
        str | None, typer.Option(help="with --kind prediction: only this prediction source")
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="run on a Ray cluster: local (started for the job), auto, or ray://host:port"
        ),
    ] = None,
    ray_actors: Annotated[int | None, typer.Option(help="with --ray: model actors (1)")] = None,
    ray_gpus: Annotated[
        float | None, typer.Option(help="with --ray: GPUs per model actor (0)")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="auto|torch|openvino: how the model runs on a CPU (auto: the faster of the "
            "two on this machine, measured on first use)"
        ),
    ] = None,
    staging: Annotated[
        str | None,
        typer.Option(help="with --ray: folder or s3:// / gs:// URL the workers write shards to"),
    ] = None,
) -> None:
    """Compute an embedding vector for every image, or with --objects for every box.

    Only the images (or boxes) still missing one are computed: a stopped job resumes."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        job = follow(
            ws,
            dataset.embed(
                model,
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
                backend=backend,
            ),
        )
        if objects:
            _objects_report(job["result"])
        else:
            _embed_report(job["result"])


def _objects_report(result: dict[str, Any]) -> None:
    rate = f" at {result['boxes_per_s']} boxes/s" if result.get("boxes_per_s") else ""
    existing = result["skipped_existing"]
    out.print(
        f"embedded {result['embedded']} of {result['boxes']} {result['kind']} boxes in "
        f"{result['images']} images with {result['model']} ({result['dim']}-d, "
        f"{result['device']}, {result['precision']}) in {result['seconds']} s{rate}"
        + (f"; {existing} already had vectors" if existing else ""),
        highlight=False,
    )
    count = result.get("failed_count") or 0
    _problems(
        f"{count} box(es) skipped",
        count,
        [f"box {item['label_id']}: {item['reason']}" for item in result.get("failed") or []],
        "all of them: GET /api/datasets/NAME/objects/skipped",
    )


def _backend_report(result: dict[str, Any]) -> None:
    """Which backend ran the model, and why: auto's measured rates, int8's cosine to fp32,
    a failed conversion."""
    facts = result.get("backend_facts") or {}
    line = f"backend: {result.get('backend', 'torch')}"
    if "auto" in facts:
        rates = ", ".join(f"{k} {v}" for k, v in facts["auto"]["rates"].items())
        line += f" (auto, measured images/s: {rates})"
    if "fallback_from" in facts:
        line += f" ({facts['fallback_from']} could not convert the model: {facts['reason']})"
    out.print(line, highlight=False)
    if "cosine_to_fp32" in facts:
        cos = facts["cosine_to_fp32"]
        out.print(
            f"int8 vectors against fp32 on {cos['images']} images: cosine min {cos['min']}, "
            f"mean {cos['mean']}",
            highlight=False,
        )


def _embed_report(result: dict[str, Any]) -> None:
    rate = f" at {result['images_per_s']} images/s" if result.get("images_per_s") else ""
    existing = result["skipped_existing"]
    if not result["embedded"] and not result["failed_count"]:
        out.print(f"nothing to embed: all {existing} images have vectors from {result['model']}")
        return
    out.print(
        f"embedded {result['embedded']} images with {result['model']} ({result['dim']}-d, "
        f"{result['device']}, {result['precision']}) in {result['seconds']} s{rate}"
        + (f"; {existing} already had vectors" if existing else ""),
        highlight=False,
    )
    _backend_report(result)
    count = result.get("failed_count") or 0
    _problems(
        f"{count} image(s) could not be read",
        count,
        [item["reason"] for item in result.get("failed") or []],
        "all of them: GET /api/datasets/NAME/embeddings/errors",
    )


@app.command("map")
@friendly
def make_map(
    name: str,
    model: VectorsModel = None,
    method: Annotated[str, typer.Option(help="umap|pca|tsne")] = "umap",
    param: Annotated[
        list[str] | None,
        typer.Option(help="k=v, repeatable: n_neighbors, min_dist, random_state, ..."),
    ] = None,
    uniqueness: Annotated[bool, typer.Option(help="also score every sample's uniqueness")] = True,
    objects: Annotated[
        bool, typer.Option("--objects", help="a point per box (visor embed --objects first)")
    ] = False,
) -> None:
    """Lay the dataset's vectors out in 2D; the new map becomes the default."""
    from visor.services.maps import parse_pairs

    with _workspace() as ws:
        dataset = ws.dataset(name)
        job = dataset.make_map(
            model, method, parse_pairs(param or []), uniqueness=uniqueness, objects=objects
        )
        result = follow(ws, job)["result"]
        what = "boxes" if result.get("objects") else "points"
        out.print(
            f"map {result['map_id']}: {result['method']} of {result['points']} {what} "
            f"({result['model']}) in {result['seconds']} s",
            highlight=False,
        )
        if "uniqueness" in result:
            _uniqueness_report(result["uniqueness"])
        _warning(result)


def _uniqueness_report(result: dict[str, Any]) -> None:
    out.print(
        f"uniqueness of {result['samples']} samples (k={result['k']}, median "
        f"{result['median']}): the samples' uniqueness field, to sort and filter by",
        highlight=False,
    )


@app.command()
@friendly
def duplicates(
    name: str,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="cosine similarity from which images are near-duplicates (default: the "
            "model's calibrated one, else one from the dataset's nearest-neighbour similarities)"
        ),
    ] = None,
    model: VectorsModel = None,
    exact_only: Annotated[
        bool, typer.Option("--exact-only", help="only byte-identical copies (no vectors needed)")
    ] = False,
    show: Annotated[int, typer.Option(help="how many groups to list")] = 10,
) -> None:
    """Group exact copies and near-duplicates; each sample gets a duplicate_group."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        result = follow(ws, dataset.find_duplicates(model, threshold, exact_only=exact_only))[
            "result"
        ]
        nearest = result.get("nearest_similarity") or {}
        if nearest.get("count"):
            cuts = ", ".join(f"{p}% {v:.4f}" for p, v in nearest["percentiles"].items())
            out.print(
                f"nearest-neighbour similarity of {nearest['count']} samples: {cuts}",
                highlight=False,
            )
            out.print(
                f"threshold {result['threshold']} ({result['threshold_rule']})", highlight=False
            )
        could_go = "" if result["removable"] is None else f"; {result['removable']} could go"
        out.print(
            f"{result['groups']} duplicate groups ({result['exact_groups']} exact) holding "
            f"{result['samples_in_groups']} samples{could_go} ({result['seconds']} s)",
            highlight=False,
        )
        found = dataset.duplicates(limit=max(show, 1))
        for group in found["groups"] if show > 0 else []:
            kind = "exact" if group["exact"] else "near"
            out.print(f"  group {group['group']} ({kind}): {_listing(group)}", highlight=False)
        if result["lookalike_clusters"]:
            out.print(
                f"{result['lookalike_clusters']} look-alike clusters holding "
                f"{result['samples_in_lookalike_clusters']} samples (images joined through "
                "similar ones: clusters to look at, not duplicates to remove)",
                highlight=False,
            )
            for cluster in found["lookalikes"][: max(show, 0) // 2]:
                out.print(f"  cluster {cluster['cluster']}: {_listing(cluster)}", highlight=False)
        if result.get("threshold_warning"):
            out.print(_styled("warning:", "bold yellow", result["threshold_warning"]))
        _warning(result)


def _listing(group: dict[str, Any], first: int = 6) -> str:
    """A group's first paths, then how many more."""
    paths = ", ".join(s["path"] or str(s["sample_id"]) for s in group["samples"][:first])
    more = group["size"] - first
    return paths + (f" (+{more})" if more > 0 else "")


@app.command()
@friendly
def uniqueness(
    name: str,
    model: VectorsModel = None,
    k: Annotated[int, typer.Option("-k", help="neighbours averaged")] = DEFAULT_UNIQUENESS_K,
) -> None:
    """Score every embedded sample's uniqueness in [0, 1] (1: the most isolated)."""
    with _workspace() as ws:
        job = follow(ws, ws.dataset(name).compute_uniqueness(model, k))
        _uniqueness_report(job["result"])
        _warning(job["result"])


@app.command()
@friendly
def index(
    name: str,
    model: VectorsModel = None,
) -> None:
    """Build the ANN index for similarity search.

    It is made on its own after embedding large datasets; smaller ones are searched
    exactly."""
    with _workspace() as ws:
        dataset = ws.dataset(name)
        result = follow(ws, dataset.build_index(model))["result"]
        out.print(
            f"index of {result['vectors']} vectors ({result['lists']} lists, "
            f"{result['probes']} probed per query) in {result['seconds']} s",
            highlight=False,
        )


@app.command()
@friendly
def similar(
    name: str,
    target: Annotated[str, typer.Argument(help="a sample id, or the path of an image file")],
    k: Annotated[int, typer.Option("-k", help="how many neighbours")] = 20,
    model: VectorsModel = None,
) -> None:
    """The images nearest to a sample or to an image file, by cosine distance."""
    from visor.embedding.models import random_weights_warning

    with _workspace() as ws:
        dataset = ws.dataset(name)
        model = model or dataset.default_model()
        if target.isdigit():
            found = dataset.similar(int(target), k, model)
        else:
            path = Path(target)
            if not path.is_file():
                raise VisorError(f"{target}: not a sample id, and no such image file")
            found = dataset.similar_to_image(path.read_bytes(), path.name, k, model)
        table = Table("sample", "distance", "path")
        for row in found:
            table.add_row(str(row["sample_id"]), f"{row['distance']:.4f}", row["path"] or "")
        out.print(table)
        _warning({"warning": random_weights_warning(model)})


@app.command()
@friendly
def objects(
    name: str,
    model: VectorsModel = None,
    threshold: Annotated[
        float | None, typer.Option(help="cosine similarity for duplicate boxes (auto)")
    ] = None,
    similar_to: Annotated[
        int | None, typer.Option("--similar", help="instead: the boxes nearest to this label id")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="how many neighbours (with --similar)")] = 20,
) -> None:
    """Outlier and near-duplicate boxes, or with --similar ID the boxes nearest to one box.

    Reads the box vectors: run visor embed --objects first."""
    from visor.embedding.models import random_weights_warning

    with _workspace() as ws:
        found = ws.dataset(name).objects
        if similar_to is not None:
            model = model or found.default_model()
            table = Table("box", "sample", "class", "distance")
            for row in found.similar(similar_to, k, model):
                table.add_row(
                    str(row["label_id"]),
                    str(row["sample_id"]),
                    str(row["class"]),
                    f"{row['distance']:.4f}",
                )
            out.print(table)
            _warning({"warning": random_weights_warning(model)})
            return
        result = follow(ws, found.analyse(model, threshold))["result"]
        out.print(
            f"{result['boxes']} boxes: {result['outliers']} outliers (uniqueness above "
            f"{result['outlier_threshold']}), {result['duplicate_groups']} groups of "
            f"near-identical boxes holding {result['boxes_in_duplicate_groups']} "
            f"(similarity >= {result['threshold']})",
            highlight=False,
        )
        _warning(result)


@app.command()
@friendly
def export(
    name: str,
    folder: Annotated[
        str, typer.Argument(metavar="OUT", help="a folder: absent, or empty (else --overwrite)")
    ],
    format: Annotated[str, typer.Option(help="coco|yolo|voc|classification|parquet")] = "coco",
    split: Annotated[str | None, typer.Option(help="only this split")] = None,
    cls: Annotated[str | None, typer.Option("--class", help="only samples with this class")] = None,
    tag: Annotated[str | None, typer.Option(help="only samples with this tag")] = None,
    view: Annotated[str | None, typer.Option(help="the samples a saved view shows")] = None,
    exclude_tag: Annotated[
        list[str] | None, typer.Option(help="leave out samples with this tag (repeatable)")
    ] = None,
    images: Annotated[
        str, typer.Option(help="copy|link|none: the images copied, linked, or left out")
    ] = "copy",
    kind: Annotated[str, typer.Option(help="gt|prediction: which boxes")] = "gt",
    source: Annotated[str | None, typer.Option(help="with --kind prediction: the source")] = None,
    min_score: Annotated[
        float | None, typer.Option(help="predictions scoring at least this")
    ] = None,
    dedupe: Annotated[
        bool, typer.Option("--dedupe", help="one sample of each duplicate group (visor duplicates)")
    ] = False,
    split_by: Annotated[
        str, typer.Option(help="existing, or ratios for new splits: 0.8,0.1,0.1")
    ] = "existing",
    seed: Annotated[int, typer.Option(help="the shuffle behind --split-by ratios")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace a non-empty folder")
    ] = False,
) -> None:
    """Write the dataset (or the samples the filters keep) in a format training code reads.

    The folder appears whole when the export ends, or not at all."""
    from visor.store.samples import SampleFilter

    ratios = None
    if split_by != "existing":
        try:
            ratios = tuple(float(part) for part in split_by.split(","))
        except ValueError:
            raise VisorError(
                f"--split-by {split_by!r}: write 'existing' or ratios like 0.8,0.1,0.1"
            ) from None
    with _workspace() as ws:
        if view is not None and (split or cls or tag):
            raise VisorError("give a view or filters (--split, --class, --tag), not both")
        chosen: dict[str, Any] = (
            {"view": view}
            if view is not None
            else {"filters": SampleFilter(split=split, category=cls, tag=tag)}
        )
        job = ws.dataset(name).export(
            folder,
            format,
            **chosen,
            exclude_tags=tuple(exclude_tag or ()),
            images=images,
            kind=kind,
            source=source,
            min_score=min_score,
            dedupe=dedupe,
            split_ratios=ratios,
            seed=seed,
            overwrite=overwrite,
        )
        result = follow(ws, job)["result"]
        splits = ", ".join(f"{k} {v}" for k, v in sorted(result.get("splits", {}).items()))
        out.print(
            f"exported {result['samples']} samples and {result['labels']} labels as "
            f"{result['format']} to {result['out']} in {result['seconds']} s"
            + (f" ({splits})" if splits else ""),
            highlight=False,
        )
        if result.get("image_labels_not_written"):
            out.print(
                f"{result['image_labels_not_written']} image-level labels not written: "
                f"{result['format']} holds boxes only (use classification, voc or parquet)",
                highlight=False,
            )
        count = result.get("skipped_count") or 0
        _problems(
            f"{count} sample(s) not written",
            count,
            [f"{item['path']}: {item['reason']}" for item in result.get("skipped") or []],
            "the job's result (visor jobs)",
        )


@app.command()
@friendly
def edits(
    name: str,
    undo: Annotated[bool, typer.Option("--undo", help="undo the newest edit")] = False,
    redo: Annotated[bool, typer.Option("--redo", help="redo the newest undone edit")] = False,
    revert: Annotated[int | None, typer.Option(help="undo edit ID (and only it)")] = None,
    show: Annotated[int | None, typer.Option(help="edit ID's changes, before and after")] = None,
    limit: Annotated[int, typer.Option(help="edits to list")] = 30,
) -> None:
    """The label edit log, newest first; undo, redo or revert an edit."""
    with _workspace() as ws:
        log = ws.dataset(name).edits
        if undo or redo or revert is not None:
            done = log.undo() if undo else log.redo() if redo else log.revert(int(revert or 0))
            out.print(f"edit {done['batch']} {done['state']} ({done['changes']} changes)")
            return
        if show is not None:
            for row in log.batch(show):
                what = f"{row['action']} label {row['label_id']} of sample {row['sample_id']}"
                change = f"{_side(row['before'])} -> {_side(row['after'])}"
                out.print(f"{what}: {change}", highlight=False)
            return
        table = Table("edit", "when", "what", "changes", "samples", "state")
        for row in log.history(limit):
            table.add_row(
                str(row["batch"]), str(row["at"])[:19], ", ".join(row["actions"]),
                str(row["changes"]), ", ".join(map(str, row["samples"][:6])), row["state"],
            )  # fmt: skip
        out.print(table)


def _side(row: dict[str, Any] | None) -> str:
    if row is None:
        return "(none)"
    if "excluded" in row:
        return "excluded" if row["excluded"] else "included"
    box = (
        "" if row.get("x") is None else f" [{row['x']:g}, {row['y']:g}, {row['w']:g}, {row['h']:g}]"
    )
    return f"{row['class']}{box}"


@app.command()
@friendly
def edit(
    name: str,
    label: Annotated[int, typer.Argument(help="the label's id (visor info, the sample view)")],
    cls: Annotated[str | None, typer.Option("--class", help="its new class")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="delete it")] = False,
) -> None:
    """Change a label's class, or delete it (recorded in the edit log: visor edits)."""
    if (cls is None) == (not delete):
        raise VisorError("give either --class NEW or --delete")
    with _workspace() as ws:
        log = ws.dataset(name).edits
        done = log.delete(label) if delete else log.set_class(label, str(cls))
        out.print(f"edit {done['batch']}: {done['changes']} change(s)")


@app.command()
@friendly
def relabel(
    name: str,
    from_class: Annotated[str, typer.Option("--from", help="the class to change")],
    to_class: Annotated[str, typer.Option("--to", help="its new name")],
    split: Annotated[str | None, typer.Option(help="only in this split")] = None,
    tag: Annotated[str | None, typer.Option(help="only samples with this tag")] = None,
) -> None:
    """Every ground-truth label of one class becomes another, as one undoable edit."""
    from visor.store.samples import SampleFilter

    with _workspace() as ws:
        dataset = ws.dataset(name)
        ids = None
        if split is not None or tag is not None:
            ids = [s["id"] for s in _all_samples(dataset, SampleFilter(split=split, tag=tag))]
        done = dataset.edits.relabel(from_class, to_class, ids)
        out.print(f"edit {done['batch']}: {done['changes']} labels {from_class} -> {to_class}")


def _all_samples(dataset: Any, filters: Any) -> list[dict[str, Any]]:
    found, offset = [], 0
    while True:
        _, page = dataset.samples(filters, offset=offset, limit=1000)
        found += page
        if len(page) < 1000:
            return found
        offset += 1000


@app.command()
@friendly
def exclude(
    name: str,
    sample: Annotated[list[int], typer.Argument(help="sample ids")],
    include: Annotated[bool, typer.Option("--include", help="take them back instead")] = False,
) -> None:
    """Leave samples out of exports (an undoable edit)."""
    with _workspace() as ws:
        log = ws.dataset(name).edits
        changes = [{"action": "include" if include else "exclude", "sample_id": i} for i in sample]
        done = log.apply(changes)
        state = "included" if include else "excluded"
        out.print(f"edit {done['batch']}: {done['changes']} sample(s) {state}")


@app.command()
@friendly
def views(
    name: str,
    save: Annotated[str | None, typer.Option(help="save a view of these filters as NAME")] = None,
    split: Annotated[str | None, typer.Option(help="with --save: this split")] = None,
    cls: Annotated[str | None, typer.Option("--class", help="with --save: this class")] = None,
    tag: Annotated[str | None, typer.Option(help="with --save: this tag")] = None,
    delete: Annotated[str | None, typer.Option(help="delete view NAME")] = None,
) -> None:
    """The dataset's saved views (also made in the UI); save or delete one."""
    from visor.store.samples import SampleFilter

    with _workspace() as ws:
        saved = ws.dataset(name).views
        if delete is not None:
            saved.delete(delete)
            out.print(f"view {delete} deleted")
            return
        if save is not None:
            saved.save(save, filters=SampleFilter(split=split, category=cls, tag=tag))
            out.print(f"view {save} saved")
            return
        table = Table("view", "filters", "lasso", "sort", "saved")
        for row in saved.list():
            shown = ", ".join(f"{k}={v}" for k, v in row["filters"].items()) or "(all samples)"
            table.add_row(
                row["name"], shown, "yes" if row.get("selection") else "",
                f"{row['sort']} {row['order']}", row["updated_at"][:19],
            )  # fmt: skip
        out.print(table)


@app.command("models")
@friendly
def list_models() -> None:
    """The embedding models known by name."""
    from visor.embedding.models import describe_models

    table = Table("name", "dim", "weights")
    for row in describe_models():
        table.add_row(row["name"], str(row["dim"]), row["weights"])
    out.print(table)
    out.print("Also: random:<name> (random weights, for trials), a model folder, or a hub id.")
    from visor.config import get_settings
    from visor.embedding.backends import check_backend, fastest, recorded_choices

    settings = get_settings()
    try:
        chosen = check_backend(settings.embed_backend, "cpu")
    except InvalidInput as e:  # a setting naming a backend not installed: say so
        chosen = f"none ({e})"
    if chosen == "auto":
        chosen = "auto (the faster of torch and openvino, measured on a model's first use)"
    out.print(
        f"On this CPU the model runs on: {chosen} (VISOR_EMBED_BACKEND={settings.embed_backend})",
        highlight=False,
    )
    for key, found in recorded_choices(settings.home / "compiled").items():
        model, precision = key.split("|")[:2]
        rates = ", ".join(f"{k} {v}" for k, v in found["rates"].items())
        out.print(
            f"  {model} ({precision}): {fastest(found['rates'])} (measured images/s: {rates})",
            highlight=False,
        )


@app.command("datasets")
@friendly
def list_datasets() -> None:
    """List the datasets in the store."""
    with _workspace() as ws:
        table = Table("name", "format", "samples", "labels", "root")
        for d in ws.datasets():
            table.add_row(
                d["name"], d["format"], str(d["num_samples"]), str(d["num_labels"]), d["root"]
            )
        out.print(table)


@app.command()
@friendly
def info(
    name: str,
    skipped: Annotated[bool, typer.Option(help="list the records skipped at ingest")] = False,
) -> None:
    """Counts per split and class."""
    with _workspace() as ws:
        data = ws.dataset(name).info()
        out.print(
            Text.assemble(
                (name, "bold"),
                f" ({data['format']}, {data['root']}): "
                f"{data['num_samples']} samples, {data['num_labels']} labels",
            )
        )
        splits = Table("split", "samples")
        for split, n in data["splits"].items():
            splits.add_row(split, str(n))
        out.print(splits)
        classes = Table("class", "kind", "labels", "samples")
        for row in data["classes"]:
            classes.add_row(row["class"], row["kind"], str(row["labels"]), str(row["samples"]))
        out.print(classes)
        vectors = ws.dataset(name).embedding_status()["models"]
        if vectors:
            table = Table("model", "dim", "vectors", "unreadable", "complete")
            for row in vectors:
                table.add_row(
                    row["model"],
                    str(row["dim"]),
                    f"{row['vectors']}/{row['samples']}",
                    str(row["errors"]),
                    "yes" if row["complete"] else f"no ({row['missing']} missing)",
                )
            out.print(table)
        report = data.get("report") or {}
        flagged = data.get("flags") or {}
        if flagged.get("size_mismatch"):
            out.print(
                f"{flagged['size_mismatch']} image(s) whose file size in pixels differs from "
                "their annotation's (the file's is used; the samples are flagged size_mismatch)",
                highlight=False,
            )
            for item in report.get("size_mismatches", [])[: None if skipped else 5]:
                annotated, found = item["annotated"], item["file"]
                out.print(
                    f"  {item['path']}: annotated {annotated[0]}x{annotated[1]}, "
                    f"file {found[0]}x{found[1]}",
                    highlight=False,
                )
        if flagged.get("box_outside_image"):
            out.print(
                f"{flagged['box_outside_image']} image(s) with a box partly outside the picture",
                highlight=False,
            )
        if skipped:
            for item in report.get("skipped", []):
                out.print(f"  {item['path']}: {item['reason']}", highlight=False)
        elif report.get("skipped_count"):
            out.print(
                f"{report['skipped_count']} record(s) skipped at ingest (--skipped lists them)"
            )


@app.command()
@friendly
def rm(name: str) -> None:
    """Delete a dataset from the store (its files are not touched)."""
    with _workspace() as ws:
        ws.dataset(name).delete()
        out.print(f"deleted {name}")


@app.command()
@friendly
def jobs(
    dataset: Annotated[str | None, typer.Option(help="only this dataset's jobs")] = None,
) -> None:
    """Recent jobs and their state."""
    with _workspace() as ws:
        rows = [
            (
                job["id"],
                job["kind"],
                job["dataset"] or "",
                job["state"],
                f"{job['done']}/{job['total']}" if job["total"] else str(job["done"]),
                job["message"] or "",
            )
            for job in ws.jobs.list(dataset=dataset)
        ]
        # One line a job: the columns before the message are shown whole, and the message
        # takes the width they leave, a long one cut at the edge (the API has it whole).
        table = Table()
        for i, heading in enumerate(("id", "kind", "dataset", "state", "done")):
            width = max([len(heading), *(len(row[i]) for row in rows)])
            table.add_column(heading, no_wrap=True, min_width=width)
        table.add_column("message", no_wrap=True, overflow="ellipsis", ratio=1)
        for row in rows:
            table.add_row(*row)
        out.print(table)


@app.command()
@friendly
def serve(
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    preload_model: Annotated[
        bool, typer.Option(help="load the embedding model now, not on first use")
    ] = False,
    model: Annotated[str | None, typer.Option(help="the model to preload")] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(help="serve other machines too (needed to bind anything but loopback)"),
    ] = False,
) -> None:
    """Serve the web UI and the HTTP API."""
    import uvicorn

    from visor.api import create_app

    settings = get_settings()
    if preload_model:
        from visor.embedding.models import load_model

        embedder = load_model(model or settings.model)
        console.print(f"model {embedder.name} loaded on {embedder.device} ({embedder.precision})")
    host = host or settings.host
    port = port or settings.port
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback and not allow_remote:
        raise VisorError(
            f"--host {host} would serve other machines: add --allow-remote if you mean it"
        )
    if not loopback:
        console.print(
            _styled(
                "warning:",
                "bold yellow",
                f"serving {host}: anyone who can reach it sees the datasets; changes still "
                "need the token in VISOR_HOME/server.json (the UI gets it with its page)",
            )
        )
    running = find_server(settings.home)
    if running is not None:
        raise VisorError(f"a Visor server for {settings.home} already runs at {running.url}")
    app_ = create_app(settings, any_host=not loopback)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print(f"Visor on http://{host}:{port}  (API docs: /docs; Ctrl-C stops)")
    # Announced once the store is open (the app's start), withdrawn as it stops.
    app_.state.announce = lambda: announce_server(settings.home, url)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
@friendly
def demo(
    images: Annotated[int, typer.Option(help="number of synthetic images")] = 2000,
    name: Annotated[str, typer.Option(help="dataset name")] = "demo",
    no_serve: Annotated[bool, typer.Option("--no-serve", help="stop after ingesting")] = False,
    path: Annotated[Path | None, typer.Option(help="where to write the images")] = None,
    model: Annotated[
        str | None, typer.Option(help="embedding model (default: dinov2-base if available)")
    ] = None,
    precision: Annotated[str | None, typer.Option(help="auto|fp32|fp16|bf16")] = None,
) -> None:
    """A synthetic dataset of shapes: ingested, embedded, mapped, deduplicated and served."""
    from visor.synthetic import generate

    settings = get_settings()
    root = path or settings.home / "demo-images"
    marker = root / f".complete-{images}"
    if not marker.exists():
        with Progress(
            TextColumn("writing demo images"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("", total=images)
            generate(root, images, progress=lambda d, t: progress.update(task, completed=d))
        marker.touch()
    with _workspace() as ws:
        job = follow(ws, ws.ingest(str(root), name, replace=True))
        samples = job["result"]["samples"]
        out.print(Text.assemble("ingested ", (name, "bold"), f": {samples} samples"))
        dataset = ws.dataset(name)
        chosen = model or _demo_model(settings.model)
        _embed_report(follow(ws, dataset.embed(chosen, precision=precision))["result"])
        result = follow(ws, dataset.make_map(chosen))["result"]
        out.print(
            f"map {result['map_id']}: {result['method']} of {result['points']} points",
            highlight=False,
        )
        result = follow(ws, dataset.find_duplicates(chosen))["result"]
        out.print(
            f"{result['groups']} duplicate groups (threshold {result['threshold']}: "
            f"{result['threshold_rule']})",
            highlight=False,
        )
        if chosen.startswith("random:"):
            out.print(
                _styled(
                    "note:",
                    "bold yellow",
                    f"{chosen} has random weights, so the map, neighbours and duplicates above "
                    "show the pipeline running, not real similarity. For real results, put "
                    "DINOv2 weights where Visor finds them (the Hugging Face cache, or a model "
                    f"folder: --model ./dinov2-base) and run visor embed {name} --model "
                    "dinov2-base, then visor map and visor duplicates.",
                ),
                highlight=False,
            )
    if not no_serve:
        serve(None, None, False, None)


def _demo_model(preferred: str) -> str:
    """The configured model if its weights load; else its random twin, with a warning."""
    from visor.embedding.models import load_model
    from visor.errors import ModelUnavailable

    try:
        load_model(preferred)
        return preferred
    except ModelUnavailable as e:
        fallback = "random:dinov2-small"
        console.print(_styled("warning:", "bold yellow", e.message), highlight=False)
        console.print(
            _styled(
                "warning:",
                "bold yellow",
                f"the demo uses {fallback} instead: random weights, so the map and neighbours "
                "show the pipeline working, not real similarity",
            ),
            highlight=False,
        )
        return fallback


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except VisorError as e:  # errors raised while parsing arguments or building the app
        console.print(_styled("error:", "red", e.message), highlight=False)
        sys.exit(1)
