"""Commands on vectors: embed, map, duplicates, uniqueness, the index, neighbours, objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from visor import ops
from visor.cli.base import (
    VectorsModel,
    _problems,
    _run,
    _styled,
    _warning,
    _workspace,
    app,
    command,
    friendly,
    out,
)
from visor.errors import VisorError


@command(ops.Embed)
def embed(name: str, fields: dict[str, Any]) -> None:
    """Compute an embedding vector for every image, or with --objects for every box.

    Only the images (or boxes) still missing one are computed: a stopped job resumes."""
    with _workspace() as ws:
        result = _run(ws, ops.Embed, name, **fields)
        if fields.get("objects"):
            _objects_report(result)
        else:
            _embed_report(result)


def _objects_report(result: dict[str, Any]) -> None:
    rate = f" at {result['boxes_per_s']} boxes/s" if result.get("boxes_per_s") else ""
    existing = result["skipped_existing"]
    out.print(
        f"embedded {result['embedded']} of {result['boxes']} {result['kind']} boxes in "
        f"{result['images']} images with {result['model']} ({result['dim']}-d, "
        f"{result['device']}, {result['precision']}) in {result['seconds']} s{rate}"
        + (f"; {existing} already had vectors" if existing else "")
    )
    count = result.get("failed_count") or 0
    _problems(
        f"{count} box(es) skipped",
        count,
        [f"box {item['label_id']}: {item['reason']}" for item in result.get("failed") or []],
        "all of them: GET /api/datasets/NAME/objects/skipped",
    )


def _backend_report(result: dict[str, Any]) -> None:
    """Which backend ran the model, and why: auto's measured rates, int8's cosine to float,
    a failed conversion."""
    facts = result.get("backend_facts") or {}
    line = f"backend: {result.get('backend', 'torch')}"
    if "auto" in facts:
        rates = ", ".join(f"{k} {v}" for k, v in facts["auto"]["rates"].items())
        line += f" (auto, measured images/s: {rates})"
    if "fallback_from" in facts:
        line += f" ({facts['fallback_from']} could not convert the model: {facts['reason']})"
    out.print(line)
    if "int8" in facts:
        out.print(_int8_line(facts["int8"]))
    if "int8_note" in facts:
        out.print(f"int8 weights only: {facts['int8_note']}")
    if "cosine_to_fp32" in facts:
        cos = facts["cosine_to_fp32"]
        out.print(
            f"int8 vectors against fp32 on {cos['images']} images: cosine min {cos['min']}, "
            f"mean {cos['mean']}"
        )


def _int8_line(facts: dict[str, Any]) -> str:
    """Static int8's guard, measured on the calibration images: used, or why not."""
    if "cosine_min" not in facts:
        return f"int8 not used: {facts['reason']}"
    measured = (
        f"on {facts['images']} of the dataset's images, int8 against "
        f"{facts.get('against', 'fp32')}: cosine min "
        f"{facts['cosine_min']}, median {facts['cosine_median']}; top-{facts['k']} neighbours "
        f"kept {facts['neighbours']:.1%}"
    )
    if "used" not in facts:  # asked for
        kept = "" if facts["kept"] else f", though {facts['reason']}"
        return f"static int8 as asked{kept} ({measured})"
    if facts["used"]:
        return f"static int8 used ({measured})"
    return f"int8 not used: {facts['reason']} ({measured})"


def _embed_report(result: dict[str, Any]) -> None:
    rate = f" at {result['images_per_s']} images/s" if result.get("images_per_s") else ""
    existing = result["skipped_existing"]
    if not result["embedded"] and not result["failed_count"]:
        out.print(f"nothing to embed: all {existing} images have vectors from {result['model']}")
        return
    out.print(
        f"embedded {result['embedded']} images with {result['model']} ({result['dim']}-d, "
        f"{result['device']}, {result['precision']}) in {result['seconds']} s{rate}"
        + (f"; {existing} already had vectors" if existing else "")
    )
    _backend_report(result)
    count = result.get("failed_count") or 0
    _problems(
        f"{count} image(s) could not be read",
        count,
        [item["reason"] for item in result.get("failed") or []],
        "all of them: GET /api/datasets/NAME/embeddings/errors",
    )


def _uniqueness_report(result: dict[str, Any]) -> None:
    out.print(
        f"uniqueness of {result['samples']} samples (k={result['k']}, median "
        f"{result['median']}): the samples' uniqueness field, to sort and filter by"
    )


@command(ops.MakeMap, "map", skip=("params",))
def make_map(
    name: str,
    fields: dict[str, Any],
    param: Annotated[
        list[str] | None,
        typer.Option(help="k=v, repeatable: n_neighbors, min_dist, random_state, ..."),
    ] = None,
) -> None:
    """Lay the dataset's vectors out in 2D; the new map becomes the default."""
    from visor.services.maps import parse_pairs

    with _workspace() as ws:
        result = _run(ws, ops.MakeMap, name, params=parse_pairs(param or []), **fields)
        what = "boxes" if result.get("objects") else "points"
        out.print(
            f"map {result['map_id']}: {result['method']} of {result['points']} {what} "
            f"({result['model']}) in {result['seconds']} s"
        )
        if "uniqueness" in result:
            _uniqueness_report(result["uniqueness"])
        _warning(result)


@command(ops.FindClusters, flags={"map_id": "--map"})
def clusters(
    name: str,
    fields: dict[str, Any],
    show: Annotated[int, typer.Option(help="how many clusters to list")] = 20,
) -> None:
    """Find density clusters on a map and label each by what its members share."""
    with _workspace() as ws:
        result = _run(ws, ops.FindClusters, name, **fields)
        if result.get("message"):
            out.print(result["message"])
        else:
            mixed = result["mixing_classes"]
            out.print(
                f"map {result['map_id']}: {result['clusters']} clusters of at least "
                f"{result['min_cluster_size']} points among {result['points']} "
                f"({result['noise']} in none); {mixed} mixing classes ({result['seconds']} s)"
            )
        found = ws.dataset(name).clusters(result["map_id"])["clusters"] or []
        for c in found[: max(show, 0)]:
            mark = "  [mixes classes]" if c["mixed"] else ""
            out.print(f"  {c['cluster']:>4}  {c['size']:>8}  {c['label']}{mark}")
        if len(found) > show > 0:
            out.print(f"  ... {len(found) - show} more (filter the samples by cluster=ID)")
        _warning(result)


@command(ops.FindDuplicates)
def duplicates(
    name: str,
    fields: dict[str, Any],
    show: Annotated[int, typer.Option(help="how many groups to list")] = 10,
) -> None:
    """Group exact copies and near-duplicates; each sample gets a duplicate_group."""
    with _workspace() as ws:
        result = _run(ws, ops.FindDuplicates, name, **fields)
        nearest = result.get("nearest_similarity") or {}
        if nearest.get("count"):
            cuts = ", ".join(f"{p}% {v:.4f}" for p, v in nearest["percentiles"].items())
            out.print(f"nearest-neighbour similarity of {nearest['count']} samples: {cuts}")
            out.print(f"threshold {result['threshold']} ({result['threshold_rule']})")
        could_go = "" if result["removable"] is None else f"; {result['removable']} could go"
        out.print(
            f"{result['groups']} duplicate groups ({result['exact_groups']} exact) holding "
            f"{result['samples_in_groups']} samples{could_go} ({result['seconds']} s)"
        )
        found = ws.dataset(name).duplicates(limit=max(show, 1))
        for group in found["groups"] if show > 0 else []:
            kind = "exact" if group["exact"] else "near"
            out.print(f"  group {group['group']} ({kind}): {_listing(group)}")
        if result["lookalike_clusters"]:
            out.print(
                f"{result['lookalike_clusters']} look-alike clusters holding "
                f"{result['samples_in_lookalike_clusters']} samples (images joined through "
                "similar ones: clusters to look at, not duplicates to remove)"
            )
            for cluster in found["lookalikes"][: max(show, 0) // 2]:
                out.print(f"  cluster {cluster['cluster']}: {_listing(cluster)}")
        pairs = found.get("closest_pairs") or []
        if pairs and show > 0:
            out.print("closest pairs (across splits first), whatever the threshold:")
            for pair in pairs[: max(show // 2, 1)]:
                where = " <-> ".join(
                    f"{p} ({s})" for p, s in zip(pair["paths"], pair["splits"], strict=True)
                )
                mark = "  [across splits]" if pair["cross_split"] else ""
                out.print(f"  {pair['similarity']:.4f}  {where}{mark}")
        if result.get("threshold_warning"):
            out.print(_styled("warning:", "bold yellow", result["threshold_warning"]))
        _warning(result)


def _listing(group: dict[str, Any], first: int = 6) -> str:
    """A group's first paths, then how many more."""
    paths = ", ".join(s["path"] or str(s["sample_id"]) for s in group["samples"][:first])
    more = group["size"] - first
    return paths + (f" (+{more})" if more > 0 else "")


@command(ops.ComputeUniqueness, flags={"k": "-k"})
def uniqueness(name: str, fields: dict[str, Any]) -> None:
    """Score every embedded sample's uniqueness in [0, 1] (1: the most isolated)."""
    with _workspace() as ws:
        result = _run(ws, ops.ComputeUniqueness, name, **fields)
        _uniqueness_report(result)
        _warning(result)


@command(ops.BuildIndex)
def index(name: str, fields: dict[str, Any]) -> None:
    """Build the ANN index for similarity search.

    It is made on its own after embedding large datasets; smaller ones are searched
    exactly."""
    with _workspace() as ws:
        result = _run(ws, ops.BuildIndex, name, **fields)
        out.print(
            f"index of {result['vectors']} vectors ({result['lists']} list"
            f"{'' if result['lists'] == 1 else 's'}, "
            f"{result['probes']} probed per query) in {result['seconds']} s"
        )


@app.command()
@friendly
def similar(
    name: str,
    target: Annotated[
        str | None, typer.Argument(help="a sample id, or the path of an image file")
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="instead: words (CLIP and SigLIP models)")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="how many neighbours")] = 20,
    model: VectorsModel = None,
) -> None:
    """The images nearest to a sample, to an image file, or with --text to words, by cosine
    distance."""
    from visor.embedding.models import random_weights_warning

    if (target is None) == (text is None):
        raise VisorError("give a sample id, an image file or --text, one of them")
    with _workspace() as ws:
        dataset = ws.dataset(name)
        model = model or dataset.default_model()
        if text is not None:
            found = dataset.similar(text=text, k=k, model=model)
        elif target is not None and target.isdigit():
            found = dataset.similar(int(target), k, model)
        else:
            path = Path(str(target))
            if not path.is_file():
                raise VisorError(f"{target}: not a sample id, and no such image file")
            found = dataset.similar_to_image(path.read_bytes(), path.name, k, model)
        table = Table("sample", "distance", "path")
        for row in found:
            table.add_row(str(row["sample_id"]), f"{row['distance']:.4f}", row["path"] or "")
        out.print(table)
        _warning({"warning": random_weights_warning(model)})


@command(ops.AnalyseObjects, "objects")
def objects(
    name: str,
    fields: dict[str, Any],
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
            model = fields.get("model") or found.default_model()
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
        result = _run(ws, ops.AnalyseObjects, name, **fields)
        out.print(
            f"{result['boxes']} boxes: {result['outliers']} outliers (uniqueness above "
            f"{result['outlier_threshold']}), {result['duplicate_groups']} groups of "
            f"near-identical boxes holding {result['boxes_in_duplicate_groups']} "
            f"(similarity >= {result['threshold']})"
        )
        _warning(result)
