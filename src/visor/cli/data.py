"""Commands that bring data in and check it: ingest, predictions, evaluation, image quality,
label errors, health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import typer

from visor import ops
from visor.cli.base import Call, _report, _styled, _table, command, out
from visor.client import RemoteWorkspace


@command(ops.Ingest, argument=None, positional=("path",), flags={"dataset": "--name"})
def ingest(call: Call) -> None:
    _report(call.run())


@command(ops.ImportPredictions, positional=("path",))
def import_predictions(call: Call) -> None:
    """Add a model's predictions to a dataset, as a named source."""
    _report(call.run())


@command(ops.Evaluate, flags={"classwise": "--classwise/--agnostic"})
def evaluate(
    call: Call,
    worst: Annotated[int, typer.Option(help="how many of the worst classes to list")] = 5,
) -> None:
    """Evaluate a prediction source COCO-style: every box TP/FP/FN, AP/AR, confusion matrix."""
    result = call.run()
    if result["worst_classes"] and worst > 0:
        out.print("worst classes (AP@[.5:.95], AP50, precision, recall, FP, FN):")
    for row in result["worst_classes"][: max(worst, 0)]:
        scores = "  ".join(_num(row[k]) for k in ("ap50", "precision", "recall"))
        out.print(f"  {row['class']:<20} {row['ap']:.3f}  {scores}  {row['fp']:>6} {row['fn']:>6}")
    where = f"?dataset={quote(str(call.name))}&eval={quote(result['evaluation'])}&tab=evaluation"
    site = call.ws.info.url.rstrip("/") if isinstance(call.ws, RemoteWorkspace) else None
    out.print(f"see the boxes: {site or 'visor serve, then '}/{where}")


@command(ops.ComputeQuality, "quality")
def quality(
    call: Call, examples: Annotated[int, typer.Option(help="sample ids listed per issue")] = 5
) -> None:
    """Measure every image (brightness, blur, entropy, colour, size) and list the issues."""
    call.run()
    found = [row for row in call.dataset.quality(examples)["issues"] if row["count"]]
    for row in found:  # the issues found (the line above counts them), with examples
        listed = ", ".join(str(i) for i in row["examples"])
        more = f": {listed}" if listed else ""
        out.print(f"  {row['issue']:<17} {row['count']:>7} ({row['share']:.1%}){more}")
    if found:
        out.print("see them: filter by image quality in the UI, or ?quality=<issue> on /samples")


_SIGNALS = {
    "overlooked": "a box may be missing (the model found a {cls})",
    "swap": "this {cls} box may be of another class",
    "badloc": "this {cls} box may be badly placed",
}


@command(ops.FindLabelErrors)
def label_errors(
    call: Call, examples: Annotated[int, typer.Option(help="worst flagged samples to list")] = 10
) -> None:
    call.run()
    found = call.dataset.label_errors(examples) or {}
    if call.fields.get("predictions") is not None:
        for sample_id in (found.get("detection") or {"examples": []})["examples"]:
            check = call.dataset.sample(sample_id).get("detection_check") or {"boxes": []}
            for box in check["boxes"]:
                said = _SIGNALS[box["signal"]].format(cls=box["class"])
                out.print(
                    f"  sample {sample_id}: {said} (box {box['label_id']}, "
                    f"score {box['score']:.3f})"
                )
        return
    for sample_id in found.get("examples", []):
        for label in call.dataset.labels(sample_id):
            scored = label.get("label_quality") or {}
            if scored.get("issue"):
                out.print(
                    f"  sample {sample_id}: labelled {label['class']}; its neighbours say "
                    f"{scored['suggested']} (quality {scored['quality']:.3f})"
                )


@command(ops.ListEvaluations, "evaluations")
def evaluations(call: Call) -> None:
    """A dataset's evaluations side by side: source, split, IoU, AP, AP50, AP75, P and R."""
    found = call.run()
    if not found:
        out.print(f"no evaluations of {call.name} yet (visor evaluate {call.name} --source S)")
        return
    # Short headings: the nine columns fit 80 characters whole.
    _table(
        ("name", "source", "split", "IoU", "AP", "AP50", "AP75", "prec.", "recall"),
        (
            (e["name"], e["source"], e["params"].get("split") or "all", e["params"].get("iou"),
             *(_num(e["summary"].get(k)) for k in ("AP", "AP50", "AP75")),
             *(_num(e["counts"].get(k)) for k in ("precision", "recall")))
            for e in found
        ),
    )  # fmt: skip


def _num(value: float | None) -> str:
    return "  -  " if value is None or value < 0 else f"{value:.3f}"


@command(ops.ComputeHealth, "health")
def health(
    call: Call,
    html: Annotated[
        Path | None, typer.Option(help="also write the report as one HTML file, images inside")
    ] = None,
    examples: Annotated[int, typer.Option(help="worst examples per problem")] = 8,
    compute: Annotated[bool, typer.Option(help="compute what is missing first (one job)")] = True,
) -> None:
    """What is wrong with a dataset: duplicates, leaks across splits, outliers, label errors,
    image quality. The signals not computed yet are computed first, as one job."""
    from visor.services import health_html
    from visor.services.health import report_lines

    if compute:
        call.run()
    report = call.dataset.health(examples)
    out.print(*report_lines(report, examples), sep="\n")
    for number, note in enumerate(report["notes"], 1):
        out.print(_styled(f"[{number}] warning:", "bold yellow", note))
    if html is not None:
        health_html.write(html, report, call.dataset.thumbnail_bytes)
        out.print(f"wrote {html}")
