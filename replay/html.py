"""Tiny helpers for self-contained HTML reports: inline SVG plots (matplotlib, Agg
backend), tables, one page. No scripts and no network: the file opens anywhere and can
be mailed or attached to a ticket as is."""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")   # files only: never a display
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["Raw", "escape", "figure", "page", "plt", "svg", "table"]


class Raw(str):
    """Markup that ``table`` passes through unescaped (a link, a ``<b>``)."""


def escape(text: Any) -> str:
    return text if isinstance(text, Raw) else html.escape(str(text))


def svg(fig: Any) -> str:
    """The figure as inline ``<svg>`` (the XML prolog dropped); the figure is closed."""
    buffer = io.StringIO()
    try:
        fig.tight_layout()
        fig.savefig(buffer, format="svg")
    finally:
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def figure(title: str, svg_text: str, caption: str = "") -> str:
    note = f'<figcaption class="note">{escape(caption)}</figcaption>' if caption else ""
    return f"<h2>{escape(title)}</h2><figure>{svg_text}{note}</figure>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; every cell escaped unless it is ``Raw``; None shows as a dash."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{'–' if cell is None else escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body_html: str) -> str:
    """A whole HTML document; ``body_html`` goes in as is (escape what it quotes)."""
    return _PAGE.format(title=escape(title), body=body_html)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
th {{ background: #f4f4f4; text-align: left; }} td {{ font-variant-numeric: tabular-nums; }}
figure {{ margin: 0; }} .note {{ color: #666; font-size: 90%; }} code {{ background: #f4f4f4; padding: 0 3px; }}
svg {{ max-width: 100%; height: auto; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""
