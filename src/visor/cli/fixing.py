"""Commands that fix and write out: export, label edits and their log, tags, saved views."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from visor import ops
from visor.cli.base import Call, _problems, _table, command, out, ran
from visor.errors import VisorError


@command(
    ops.Export,
    positional=("out",),
    skip=("download", "split_ratios"),
    flags={"exclude_tags": "--exclude-tag"},
)
def export(
    call: Call,
    split_by: Annotated[
        str, typer.Option(help="existing, or ratios for new splits: 0.8,0.1,0.1")
    ] = "existing",
) -> None:
    try:
        ratios = None if split_by == "existing" else [float(p) for p in split_by.split(",")]
    except ValueError:
        raise VisorError(
            f"--split-by {split_by!r}: write 'existing' or ratios like 0.8,0.1,0.1"
        ) from None
    result = call.run(split_ratios=ratios)
    count = result.get("skipped_count") or 0
    skipped = [f"{item['path']}: {item['reason']}" for item in result.get("skipped") or []]
    _problems(f"{count} sample(s) not written", count, skipped, "the job's result (visor jobs)")


@command(ops.EditHistory, "edits")
def edits(
    call: Call,
    undo: Annotated[bool, typer.Option("--undo", help="undo the newest edit")] = False,
    redo: Annotated[bool, typer.Option("--redo", help="redo the newest undone edit")] = False,
    revert: Annotated[int | None, typer.Option(help="undo edit ID (and only it)")] = None,
    show: Annotated[int | None, typer.Option(help="edit ID's changes, before and after")] = None,
) -> None:
    """The label edit log, newest first; undo, redo or revert an edit."""
    if undo or redo or revert is not None:
        call.run(
            ops.Undo if undo else ops.Redo if redo else ops.Revert,
            **({} if revert is None else {"batch": revert}),
        )
    elif show is not None:
        for row in call.run(ops.EditBatch, batch=show):
            out.print(
                f"{row['action']} label {row['label_id']} of sample {row['sample_id']}: "
                f"{_side(row['before'])} -> {_side(row['after'])}"
            )
    else:
        _table(
            ("edit", "when", "what", "changes", "samples", "state"),
            (
                (row["batch"], str(row["at"])[:19], ", ".join(row["actions"]), row["changes"],
                 ", ".join(map(str, row["samples"][:6])), row["state"])
                for row in call.run()
            ),
            f"no edits of {call.name} yet (visor edit, relabel, tag-zero-shot or the UI make them)",
        )  # fmt: skip


def _side(row: dict[str, Any] | None) -> str:
    if row is None:
        return "(none)"
    if "excluded" in row:
        return "excluded" if row["excluded"] else "included"
    if row.get("x") is None:
        return str(row["class"])
    return f"{row['class']} [{row['x']:g}, {row['y']:g}, {row['w']:g}, {row['h']:g}]"


@command(ops.ApplyEdits, "edit", skip=("changes",))
def edit(
    call: Call,
    label: Annotated[int, typer.Argument(help="the label's id (visor info, the sample view)")],
    cls: Annotated[str | None, typer.Option("--class", help="its new class")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="delete it")] = False,
) -> None:
    """Change a label's class, or delete it (recorded in the edit log: visor edits)."""
    if (cls is None) == (not delete):
        raise VisorError("give either --class NEW or --delete")
    change = {"action": "set_class", "class": cls} if cls else {"action": "delete"}
    done = call.run(changes=[change | {"label_id": label}])
    out.print(f"edit {done['batch']}: {done['changes']} change(s)")


@command(ops.ApplyEdits, "exclude", skip=("changes",))
def exclude(
    call: Call,
    sample: Annotated[list[int], typer.Argument(help="sample ids")],
    include: Annotated[bool, typer.Option("--include", help="take them back instead")] = False,
) -> None:
    """Leave samples out of exports (an undoable edit)."""
    action = "include" if include else "exclude"
    done = call.run(changes=[{"action": action, "sample_id": i} for i in sample])
    out.print(f"edit {done['batch']}: {done['changes']} sample(s) {action}d")


command(ops.Relabel, skip=("selection",), flags={"from_class": "--from", "to_class": "--to"})(ran)


@command(ops.AddTags, "tag", positional=("tags",), skip=("selection",))
def tag(
    call: Call, remove: Annotated[bool, typer.Option("--remove", help="untag them instead")] = False
) -> None:
    """Tag samples (by --ids, or the samples the filters keep), or untag them with --remove."""
    call.run(ops.RemoveTags if remove else None)


@command(ops.ListViews, "views")
def views(
    call: Call, delete: Annotated[str | None, typer.Option(help="delete view NAME")] = None
) -> None:
    """The dataset's saved views (made in the UI, or by visor save-view); delete one."""
    if delete is not None:
        call.run(ops.DeleteView, view=delete)
        return
    _table(
        ("view", "filters", "lasso", "sort", "saved"),
        (
            (row["name"],
             ", ".join(f"{k}={v}" for k, v in row["filters"].items()) or "(all samples)",
             "yes" if row.get("selection") else "", f"{row['sort']} {row['order']}",
             row["updated_at"][:19])
            for row in call.run()
        ),
        f"no saved views of {call.name} yet (visor save-view NAME VIEW [FILTERS], or the UI)",
    )  # fmt: skip


command(ops.SaveView, positional=("view",), skip=("selection", "ui"))(ran)


@command(ops.TagZeroShot)
def tag_zero_shot(call: Call) -> None:
    """Tag each image with the label a CLIP or SigLIP model finds likeliest, as one undoable
    edit (default labels: the dataset's classes; then the images whose ground truth the
    model disagrees with are tagged too)."""
    result = call.run()
    if result["disagree"] is not None:
        out.print(
            f"{result['disagree']} images whose classes don't hold their zero-shot class "
            f"(tag {result['disagree_tag']})"
        )
    if result["batch"] is not None:
        out.print(f"edit {result['batch']}: undo with visor edits {call.name} --undo")
