"""What is made from the operations' models and checked in: the HTTP API's OpenAPI document,
from which the web UI's TypeScript types are made (`frontend/openapi.json`, read by
openapi-typescript), and the README's table of operations.

`python -m visor.api.schema frontend/openapi.json README.md` writes both; with `--check` it
fails when either is not what the code makes (an operation changed since: `make openapi`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def document() -> dict[str, Any]:
    from visor.api.app import create_app

    return create_app().openapi()


BEGIN, END = "<!-- operations: made by visor.api.schema -->", "<!-- end of operations -->"


def operations_table() -> str:
    """One row per operation: its route, body fields, what it answers."""
    from visor.ops import OPS

    rows = ["| route | body | what |", "|---|---|---|"]
    for (scope, name), cls in sorted(
        OPS.items(), key=lambda item: (item[0][0] != "workspace", item[0])
    ):
        path = f"/api/datasets/{{name}}/{name}" if scope == "dataset" else f"/api/{name}"
        fields = ", ".join(
            (f.alias or n) + ("" if f.is_required() else "?") for n, f in cls.model_fields.items()
        )
        doc = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        answer = (
            "202, the job"
            if cls.job
            else ("Arrow IPC" if cls.media_type.endswith("stream") else "")
        )
        rows.append(
            f"| `POST {path}` | {fields or '(none)'} | {doc}"
            + (f" ({answer})" if answer else "")
            + " |"
        )
    return "\n".join(rows)


def _readme(text: str) -> str:
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{BEGIN}\n{operations_table()}\n{END}{after}"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    schema, readme = (Path(a) for a in argv if not a.startswith("--"))
    wanted = {
        schema: json.dumps(document(), indent=1, sort_keys=True) + "\n",
        readme: _readme(readme.read_text()),
    }
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if not check:
        for path in stale:
            path.write_text(wanted[path])
        return 0
    for path in stale:
        print(f"{path} is not what the operations make: run make openapi", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
