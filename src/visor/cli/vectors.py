"""Commands on vectors: embed, map, duplicates, uniqueness, the index, neighbours, objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from visor import ops
from visor.cli.base import (
    _problems,
    _run,
    _styled,
    _table,
    _warning,
    _workspace,
    command,
    out,
)
from visor.errors import VisorError
from visor.ops.vectors import uniqueness_line


@command(ops.Embed)
def embed(name: str, fields: dict[str, Any]) -> None:
    """Compute an embedding vector for every image, or with --objects for every box.

    Only the images (or boxes) still missing one are computed: a stopped job resumes."""
    with _workspace() as ws:
        result = _run(ws, ops.Embed, name, **fields)
        count = result.get("failed_count") or 0
        if fields.get("objects"):
            failed = [f"box {item['label_id']}: {item['reason']}" for item in result["failed"]]
            where = "all of them: GET /api/datasets/NAME/objects/skipped"
            _problems(f"{count} box(es) skipped", count, failed, where)
        elif result["embedded"] or count:
            _backend_report(result)
            failed = [item["reason"] for item in result["failed"]]
            where = "all of them: GET /api/datasets/NAME/embeddings/errors"
            _problems(f"{count} image(s) could not be read", count, failed, where)


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
        if "uniqueness" in result:
            out.print(uniqueness_line(result["uniqueness"]))
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
        _warning(_run(ws, ops.ComputeUniqueness, name, **fields))


@command(ops.BuildIndex)
def index(name: str, fields: dict[str, Any]) -> None:
    """Build the ANN index for similarity search.

    It is made on its own after embedding large datasets; smaller ones are searched
    exactly."""
    with _workspace() as ws:
        _run(ws, ops.BuildIndex, name, **fields)


@command(ops.Similar, skip=("sample_id",), flags={"k": "-k"})
def similar(
    name: str,
    fields: dict[str, Any],
    target: Annotated[
        str | None, typer.Argument(metavar="TARGET", help="a sample id, or an image file")
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="instead: words (CLIP and SigLIP models)")
    ] = None,
) -> None:
    """The images nearest to a sample, to an image file, or with --text to words, by cosine
    distance (among the samples the filters keep, if any)."""
    from visor.embedding.models import random_weights_warning

    if (target is None) == (text is None):
        raise VisorError("give a sample id, an image file or --text, one of them")
    with _workspace() as ws:
        dataset = ws.dataset(name)
        model = fields.pop("model", None) or dataset.default_model()
        asked = {"k": fields.get("k", 20), "model": model, "filters": fields.get("filters")}
        if text is not None:
            found = dataset.similar(text=text, **asked)
        elif target is not None and target.isdigit():
            found = dataset.similar(int(target), **asked)
        else:
            path = Path(str(target))
            if not path.is_file():
                raise VisorError(f"{target}: not a sample id, and no such image file")
            found = dataset.similar_to_image(path.read_bytes(), path.name, **asked)
        _table(
            ("sample", "distance", "path"),
            ((row["sample_id"], f"{row['distance']:.4f}", row["path"]) for row in found),
        )
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
            _table(
                ("box", "sample", "class", "distance"),
                (
                    (row["label_id"], row["sample_id"], row["class"], f"{row['distance']:.4f}")
                    for row in found.similar(similar_to, k, model)
                ),
            )
            _warning({"warning": random_weights_warning(model)})
            return
        _warning(_run(ws, ops.AnalyseObjects, name, **fields))
