"""Commands that fix and write out: export, label edits and their log, saved views."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from visor import ops
from visor.cli.base import _problems, _run, _table, _workspace, app, command, friendly, out
from visor.errors import VisorError


@command(
    ops.Export,
    positional=("out",),
    skip=("download", "split_ratios"),
    flags={"exclude_tags": "--exclude-tag"},
)
def export(
    name: str,
    fields: dict[str, Any],
    split_by: Annotated[
        str, typer.Option(help="existing, or ratios for new splits: 0.8,0.1,0.1")
    ] = "existing",
) -> None:
    """Write the dataset (or the samples the filters keep) in a format training code reads.

    The folder appears whole when the export ends, or not at all."""
    if split_by != "existing":
        try:
            fields["split_ratios"] = [float(part) for part in split_by.split(",")]
        except ValueError:
            raise VisorError(
                f"--split-by {split_by!r}: write 'existing' or ratios like 0.8,0.1,0.1"
            ) from None
    with _workspace() as ws:
        result = _run(ws, ops.Export, name, **fields)
        if result.get("image_labels_not_written"):
            out.print(
                f"{result['image_labels_not_written']} image-level labels not written: "
                f"{result['format']} holds boxes only (use classification, voc or parquet)"
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
                out.print(f"{what}: {change}")
            return
        _table(
            ("edit", "when", "what", "changes", "samples", "state"),
            (
                (row["batch"], str(row["at"])[:19], ", ".join(row["actions"]), row["changes"],
                 ", ".join(map(str, row["samples"][:6])), row["state"])
                for row in log.history(limit)
            ),
        )  # fmt: skip


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


@command(ops.Relabel, skip=("ids", "selection"), flags={"from_class": "--from", "to_class": "--to"})
def relabel(name: str, fields: dict[str, Any]) -> None:
    """Every ground-truth label of one class (in the samples the filters keep, else all)
    becomes another, as one undoable edit."""
    with _workspace() as ws:
        done = ws.runner.run(ops.make(ops.Relabel, **fields), name)
        out.print(
            f"edit {done['batch']}: {done['changes']} labels {fields['from_class']} -> "
            f"{fields['to_class']}"
        )


@command(ops.AddTags, "tag", positional=("tags",), skip=("selection",))
def tag(
    name: str,
    fields: dict[str, Any],
    remove: Annotated[bool, typer.Option("--remove", help="untag them instead")] = False,
) -> None:
    """Tag samples (by --ids, or the samples the filters keep), or untag them with --remove."""
    with _workspace() as ws:
        changed = ws.runner.run(ops.make(ops.RemoveTags if remove else ops.AddTags, **fields), name)
        said = "untagged" if remove else "tagged"
        out.print(f"{said} {changed} samples: {', '.join(fields['tags'])}")


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
    delete: Annotated[str | None, typer.Option(help="delete view NAME")] = None,
) -> None:
    """The dataset's saved views (made in the UI, or by visor save-view); delete one."""
    with _workspace() as ws:
        saved = ws.dataset(name).views
        if delete is not None:
            saved.delete(delete)
            out.print(f"view {delete} deleted")
            return
        _table(
            ("view", "filters", "lasso", "sort", "saved"),
            (
                (row["name"],
                 ", ".join(f"{k}={v}" for k, v in row["filters"].items()) or "(all samples)",
                 "yes" if row.get("selection") else "", f"{row['sort']} {row['order']}",
                 row["updated_at"][:19])
                for row in saved.list()
            ),
        )  # fmt: skip


@command(ops.SaveView, positional=("view",), skip=("selection", "ui"))
def save_view(name: str, fields: dict[str, Any]) -> None:
    """Save (or replace) a view: the samples the filters (or --ids) keep, and their sort."""
    with _workspace() as ws:
        ws.runner.run(ops.make(ops.SaveView, **fields), name)
        out.print(f"view {fields['view']} saved")


@command(ops.TagZeroShot)
def tag_zero_shot(name: str, fields: dict[str, Any]) -> None:
    """Tag each image with the label a CLIP or SigLIP model finds likeliest, as one undoable
    edit (default labels: the dataset's classes; then the images whose ground truth the
    model disagrees with are tagged too)."""
    from visor.cli.base import _warning

    with _workspace() as ws:
        result = _run(ws, ops.TagZeroShot, name, **fields)
        if result["disagree"] is not None:
            out.print(
                f"{result['disagree']} images whose classes don't hold their zero-shot class "
                f"(tag {result['disagree_tag']})"
            )
        if result["batch"] is not None:
            out.print(f"edit {result['batch']}: undo with visor edits {name} --undo")
        _warning(result)
