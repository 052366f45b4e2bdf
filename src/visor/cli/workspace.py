"""Commands on the workspace: models, datasets, info, rm, jobs, serve and the demo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from visor import ops
from visor.cli.base import Call, _styled, _table, app, command, console, friendly, out
from visor.cli.options import REPORTS
from visor.client import RemoteWorkspace, find_server, open_workspace
from visor.config import get_settings
from visor.ops.models import describe, models_lines


@app.command("models")
@friendly
def list_models() -> None:
    """The embedding models known by name, and how this CPU runs them (a running server's)."""
    if find_server(get_settings().home) is None:  # no store needed: one in use doesn't stop it
        found = describe(get_settings())
    else:
        with open_workspace() as ws:
            found = ws.models()
    _table(
        ("name", "dim", "weights", "text search"),
        ((m["name"], m["dim"], m["weights"], "yes" if m["text"] else "") for m in found["models"]),
    )
    out.print(*models_lines(found), sep="\n")


@command(ops.Datasets, argument=None)
def datasets(call: Call) -> None:
    """List the datasets in the store."""
    keys = ("name", "format", "num_samples", "num_labels", "root")
    rows = ([d[k] for k in keys] for d in call.run())
    empty = "no datasets yet: visor ingest PATH --name NAME, or visor demo"
    _table(("name", "format", "samples", "labels", "root"), rows, empty)


@command(ops.Info)
def info(
    call: Call,
    skipped: Annotated[bool, typer.Option(help="list the records skipped at ingest")] = False,
) -> None:
    """Counts per split, class and tag; vectors per model; what ingest flagged or skipped."""
    data = call.run()
    out.print(
        Text.assemble(
            (str(call.name), "bold"),
            f" ({data['format']}, {data['root']}): "
            f"{data['num_samples']} samples, {data['num_labels']} labels",
        )
    )
    _table(("split", "samples"), data["splits"].items())
    keys = ("class", "kind", "labels", "samples")
    _table(keys, ([row[k] for k in keys] for row in data["classes"]))
    if data.get("tags"):
        _table(("tag", "samples"), data["tags"].items())
    if vectors := call.run(ops.EmbeddingStatus)["models"]:
        _table(
            ("model", "dim", "vectors", "unreadable", "complete"),
            (
                (row["model"], row["dim"], f"{row['vectors']}/{row['samples']}", row["errors"],
                 "yes" if row["complete"] else f"no ({row['missing']} missing)")
                for row in vectors
            ),
        )  # fmt: skip
    report, flagged = data.get("report") or {}, data.get("flags") or {}
    if flagged.get("size_mismatch"):
        out.print(
            f"{flagged['size_mismatch']} image(s) whose file size in pixels differs from "
            "their annotation's (the file's is used; the samples are flagged size_mismatch)"
        )
    for item in report.get("size_mismatches", [])[: None if skipped else 5]:
        (aw, ah), (fw, fh) = item["annotated"], item["file"]
        out.print(f"  {item['path']}: annotated {aw}x{ah}, file {fw}x{fh}")
    if flagged.get("box_outside_image"):
        out.print(f"{flagged['box_outside_image']} image(s) with a box partly outside the picture")
    for item in report.get("skipped", []) if skipped else []:
        out.print(f"  {item['path']}: {item['reason']}")
    if report.get("skipped_count") and not skipped:
        out.print(f"{report['skipped_count']} record(s) skipped at ingest (--skipped lists them)")


@command(ops.DeleteDataset, "rm")
def rm(call: Call) -> None:
    call.run()
    out.print(f"deleted {call.name}")


_JOB = ("id", "kind", "dataset", "state", "done")  # the columns before the message


@app.command()
@friendly
def jobs(
    dataset: Annotated[str | None, typer.Option(help="only this dataset's jobs")] = None,
) -> None:
    """Recent jobs and their state."""
    with open_workspace() as ws:
        rows = [
            (job["id"], job["kind"], job["dataset"] or "", job["state"],
             f"{job['done']}/{job['total']}" if job["total"] else str(job["done"] or ""),
             job["message"] or "")
            for job in ws.jobs.list(dataset=dataset)
        ]  # fmt: skip
    # One line a job: the columns before the message are shown whole, and the message takes
    # the width they leave, a long one cut at the edge (the API has it whole). Cut here: a
    # cell wider than the table leaves makes rich squeeze the other columns away.
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(_JOB)]
    left = max(out.width - sum(widths) - 3 * len(_JOB) - 4, 12)
    table = Table()
    for heading, width in zip(_JOB, widths, strict=True):
        table.add_column(heading, no_wrap=True, min_width=width)
    table.add_column("message", no_wrap=True)
    for row in rows:
        table.add_row(*row[:-1], row[-1] if len(row[-1]) <= left else row[-1][: left - 1] + "…")
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
        bool, typer.Option(help="serve other machines too (needed to bind anything but loopback)")
    ] = False,
) -> None:
    """Serve the web UI and the HTTP API."""
    from visor import api

    if preload_model:
        from visor.embedding.models import load_model

        embedder = load_model(model or get_settings().model)
        console.print(f"model {embedder.name} loaded on {embedder.device} ({embedder.precision})")
    api.serve(host=host, port=port, allow_remote=allow_remote, say=console.print, warn=_warn)


@command(ops.Demo, argument=None, flags={"dataset": "--name"})
def demo(
    call: Call,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="build it, don't serve it")] = False,
) -> Callable[[], None] | None:
    """A synthetic dataset of shapes: ingested, embedded, mapped, deduplicated and served.

    A finished demo (every image embedded, a map) is served at once; --fresh rebuilds it."""
    result = call.run()
    for warning in result["warnings"]:
        _warn(warning)
    for step in result["steps"]:  # each step's report, as its own command prints it
        op = next(cls for cls in REPORTS if cls.name == step["op"])
        made = Call(call.ws, op, result["dataset"], step["params"], done=step)
        REPORTS[op](made, **({"show": 0} if op is ops.FindDuplicates else {}))
    if result["note"]:
        out.print(_styled("note:", "bold yellow", result["note"]))
    if no_serve:
        return None
    if isinstance(call.ws, RemoteWorkspace):  # built by the server that runs: it shows it
        out.print(f"see it: {call.ws.info.url.rstrip('/')}/?dataset={quote(result['dataset'])}")
        return None
    return lambda: serve(None, None, False, None)  # once the store is closed: the server's


def _warn(text: str) -> None:
    console.print(_styled("warning:", "bold yellow", text))
