"""The health report as one static HTML file (thumbnails embedded), to mail to a colleague."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visor.media.thumbnails import write_atomically

_STYLE = """
body { font: 14px system-ui, sans-serif; color: #1d2330; margin: 24px; }
table { border-collapse: collapse; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e3e6eb; text-align: left; }
td { vertical-align: top; }
td.count { text-align: right; white-space: nowrap; }
.strip img { height: 64px; margin: 0 3px 3px 0; border-radius: 3px; }
.todo, .detail { color: #667; font-size: 12px; }
.warning { color: #5c4300; background: #fff4d6; padding: 2px 6px; font-size: 12px; }
"""


def render(report: dict[str, Any], thumbnail: Callable[[int], bytes | None]) -> str:
    """The report as HTML; `thumbnail(sample_id)` gives JPEG bytes (None: left out)."""
    rows = []
    for row in report["rows"]:
        if row["count"] is None:
            count = "-"
            body = f'<span class="todo">not computed: {html.escape(row.get("todo", ""))}</span>'
        else:
            count = f"{row['count']:,} ({row['share']:.1%})"
            if row.get("note"):
                count += f" <sup>[{row['note']}]</sup>"
            images = []
            for sample_id in row.get("examples", []):
                data = thumbnail(sample_id)
                if data:
                    encoded = base64.b64encode(data).decode()
                    images.append(
                        f'<img src="data:image/jpeg;base64,{encoded}" title="sample {sample_id}" '
                        f'alt="sample {sample_id}">'
                    )
            body = f'<div class="strip">{"".join(images)}</div>'
            if row.get("detail"):
                detail = ", ".join(f"{k}: {v}" for k, v in row["detail"].items() if v is not None)
                body += f'<div class="detail">{html.escape(detail)}</div>'
        rows.append(
            f"<tr><td>{html.escape(row['title'])}</td><td class=count>{count}</td>"
            f"<td>{body}</td></tr>"
        )
    title = f"Health of {report['dataset']} ({report['samples']:,} samples)"
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + "".join(
            f'<p class="warning">[{i}] {html.escape(note)}</p>'
            for i, note in enumerate(report["notes"], 1)
        )
        + "<table><thead><tr><th>problem</th><th>samples</th><th>worst examples</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></body></html>"
    )


def write(path: Path, report: dict[str, Any], thumbnail: Callable[[int], bytes | None]) -> None:
    """Write the report to `path` whole or not at all."""
    write_atomically(path, render(report, thumbnail).encode())
