"""Every output builder produces, from model values to text (pure; no engine, no network).

- `text`: what people read: tables, trees, the explain view, build reports, dry runs.
- `data`: what machines read: JSON of the affected set, the graph, plans, the metadata file.
- `graphs`: mermaid and dot pictures of the image graph.
- `github`: GitHub Actions' job summary, step outputs and fan-out matrices.
- `gitlab`: GitLab CI's dotenv report and fan-out child pipeline.
- `junit`: the JUnit XML test report GitLab and Jenkins show.

Writing the text somewhere is the caller's business (builder/publish.py for CI files).
"""

from __future__ import annotations

from collections.abc import Sequence


def render_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def clip(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
