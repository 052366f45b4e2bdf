"""Commands on vectors: embed, map, duplicates, uniqueness, the index, neighbours, objects."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Any

import typer

from visor import ops
from visor.cli.base import Call, _problems, _table, _warning, command, out, ran
from visor.errors import VisorError


@command(ops.Embed)
def embed(call: Call) -> None:
    result, objects = call.run(), call.fields.get("objects")
    count = result.get("failed_count") or 0
    failed = [(f"box {i['label_id']}: " if objects else "") + i["reason"] for i in result["failed"]]
    what, where = "box(es) skipped", "objects/skipped"
    if not objects:
        what, where = "image(s) could not be read", "embeddings/errors"
    _problems(f"{count} {what}", count, failed, f"all of them: GET /api/datasets/NAME/{where}")


@command(ops.MakeMap, "map", skip=("params",))
def make_map(
    call: Call,
    param: Annotated[
        list[str] | None,
        typer.Option(help="k=v, repeatable: n_neighbors, min_dist, random_state, ..."),
    ] = None,
) -> None:
    from visor.services.maps import parse_pairs

    call.run(params=parse_pairs(param or []))


@command(ops.FindClusters, flags={"map_id": "--map"})
def clusters(
    call: Call, show: Annotated[int, typer.Option(help="how many clusters to list")] = 20
) -> None:
    """Find density clusters on a map and label each by what its members share."""
    result = call.run()
    found = call.dataset.clusters(result["map_id"])["clusters"] or []
    for c in found[: max(show, 0)]:
        mark = "  [mixes classes]" if c["mixed"] else ""
        out.print(f"  {c['cluster']:>4}  {c['size']:>8}  {c['label']}{mark}")
    if len(found) > show > 0:
        out.print(f"  ... {len(found) - show} more (filter the samples by cluster=ID)")


@command(ops.FindDuplicates)
def duplicates(
    call: Call, show: Annotated[int, typer.Option(help="how many groups to list")] = 10
) -> None:
    """Group exact copies and near-duplicates; each sample gets a duplicate_group."""
    result = call.run()
    found = call.dataset.duplicates(limit=max(show, 1))
    for group in found["groups"] if show > 0 else []:
        out.print(
            f"  group {group['group']} ({'exact' if group['exact'] else 'near'}): {_listing(group)}"
        )
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
    for pair in pairs[: max(show // 2, 1)] if show > 0 else []:
        ends = zip(pair["paths"], pair["splits"], strict=True)
        where = " <-> ".join(f"{path} ({split})" for path, split in ends)
        mark = "  [across splits]" if pair["cross_split"] else ""
        out.print(f"  {pair['similarity']:.4f}  {where}{mark}")
    _warning(result.get("threshold_warning"))


def _listing(group: dict[str, Any], first: int = 6) -> str:
    """A group's first paths, then how many more."""
    paths = ", ".join(s["path"] or str(s["sample_id"]) for s in group["samples"][:first])
    more = group["size"] - first
    return paths + (f" (+{more})" if more > 0 else "")


command(ops.ComputeUniqueness, flags={"k": "-k"})(ran)
command(ops.BuildIndex)(ran)


@command(ops.Similar, skip=("sample_id",), flags={"k": "-k"})
def similar(
    call: Call,
    target: Annotated[
        str | None, typer.Argument(metavar="TARGET", help="a sample id, or an image file")
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="instead: words (CLIP and SigLIP models)")
    ] = None,
) -> None:
    """The images nearest to a sample, to an image file, or with --text to words, by cosine
    distance (among the samples the filters keep, if any)."""
    if (target is None) == (text is None):
        raise VisorError("give a sample id, an image file or --text, one of them")
    model = call.fields.pop("model", None) or call.run(ops.DefaultModel)
    if text is not None:
        found = call.run(ops.SimilarToText, text=text, model=model)
    elif str(target).isdigit():
        found = call.run(sample_id=int(str(target)), model=model)
    elif Path(str(target)).is_file():
        image = Path(str(target))  # the op's bytes travel as base64 (JSON), as any client's
        data = base64.b64encode(image.read_bytes())
        found = call.run(ops.SimilarToImage, image=data, filename=image.name, model=model)
    else:
        raise VisorError(f"{target}: not a sample id, and no such image file")
    _table(
        ("sample", "distance", "path"),
        ((row["sample_id"], f"{row['distance']:.4f}", row["path"]) for row in found),
    )
    _random_weights(model)


def _random_weights(model: str) -> None:
    from visor.embedding.models import random_weights_warning

    _warning(random_weights_warning(model))


@command(ops.AnalyseObjects, "objects")
def objects(
    call: Call,
    similar_to: Annotated[
        int | None, typer.Option("--similar", help="instead: the boxes nearest to this label id")
    ] = None,
    k: Annotated[int, typer.Option("-k", help="how many neighbours (with --similar)")] = 20,
) -> None:
    """Outlier and near-duplicate boxes, or with --similar ID the boxes nearest to one box.

    Reads the box vectors: run visor embed --objects first."""
    if similar_to is None:
        call.run()
        return
    model = call.fields.get("model") or call.run(ops.ObjectModel)
    found = call.run(ops.SimilarObjects, label_id=similar_to, k=k, model=model)
    _table(
        ("box", "sample", "class", "distance"),
        ((r["label_id"], r["sample_id"], r["class"], f"{r['distance']:.4f}") for r in found),
    )
    _random_weights(model)
