"""Rendering of a study report: blocks -> Markdown and self-contained HTML, numbers -> text.

A report is a list of blocks, each a tuple:

- ``("h", level, text)``: a heading;
- ``("p", text)``: a paragraph (`` `code` `` spans become ``<code>`` in HTML);
- ``("ul", [text, ...])``: a bullet list;
- ``("table", frame, caption)``: a DataFrame of already formatted strings;
- ``("figure", file_name, png_bytes, caption)``: a PNG written beside the report
  (Markdown links it, HTML embeds it as base64);
- ``("code", text)``: a preformatted block (the spec's TOML).

Both renderings are pure functions of the blocks, so the same blocks give the
same bytes.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re

import numpy as np
import pandas as pd

__all__ = ["count", "fmt", "fmt_p", "fmt_pct", "png_bytes", "to_html", "to_markdown"]

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
max-width:70em;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
h1,h2,h3{line-height:1.2}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f2f2f2}td.n{text-align:right}
caption{caption-side:bottom;text-align:left;font-size:.85em;color:#555;padding-top:.3em}
figure{margin:1em 0 2em}figure img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#444}code,pre{background:#f6f6f6;font-size:.9em}
pre{padding:.6em;overflow-x:auto}"""


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt(value) -> str:
    """A number as report text: integers as such, others to about 3 significant digits.

    Examples
    --------
    >>> [fmt(v) for v in (3, 1234.5, 98.17, 0.5, 0.000123, float("nan"), -21.2)]
    ['3', '1234', '98.2', '0.500', '0.000123', 'n/a', '-21.2']
    """
    if _missing(value):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "n/a"
        a = abs(v)
        if a >= 100 or v == 0:
            text = f"{v:.0f}"
        elif a >= 10:
            text = f"{v:.1f}"
        elif a >= 1:
            text = f"{v:.2f}"
        elif a >= 0.001:
            text = f"{v:.3f}"
        else:
            text = f"{v:.3g}"
        return "0" if text in ("-0", "-0.0", "-0.00", "-0.000") else text
    return str(value)


def count(n, word, plural=None) -> str:
    """``n`` and the word, plural unless n is 1.

    Examples
    --------
    >>> count(1, "scan"), count(4, "scan"), count(2, "repeat")
    ('1 scan', '4 scans', '2 repeats')
    """
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def fmt_pct(value) -> str:
    """A percentage to one decimal (``"n/a"`` when missing).

    Examples
    --------
    >>> fmt_pct(12.345), fmt_pct(-0.04), fmt_pct(float("nan"))
    ('12.3%', '0.0%', 'n/a')
    """
    if _missing(value) or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.1f}"
    return ("0.0" if text == "-0.0" else text) + "%"


def fmt_p(value) -> str:
    """A p-value: three decimals, ``"< 0.001"`` below that.

    Examples
    --------
    >>> fmt_p(0.04321), fmt_p(2e-7), fmt_p(float("nan"))
    ('0.043', '< 0.001', 'n/a')
    """
    if _missing(value) or not math.isfinite(float(value)):
        return "n/a"
    return "< 0.001" if float(value) < 0.001 else f"{float(value):.3f}"


def png_bytes(fig, *, dpi=110) -> bytes:
    """The PNG of a matplotlib Figure, without the (version-dependent) Software tag."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# --- Markdown -----------------------------------------------------------------------------

def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> list:
    head = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_md_cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False, name=None)]
    return [head, sep, *rows]


def to_markdown(blocks) -> str:
    """The Markdown text of a report's blocks."""
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out += ["#" * block[1] + " " + block[2], ""]
        elif kind == "p":
            out += [block[1], ""]
        elif kind == "ul":
            out += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            out += _md_table(block[1]) + [""]
            if block[2]:
                out += [f"*{block[2]}*", ""]
        elif kind == "figure":
            out += [f"![{block[3]}]({block[1]})", "", f"*{block[3]}*", ""]
        elif kind == "code":
            out += ["```toml", block[1].rstrip("\n"), "```", ""]
        else:
            raise ValueError(f"unknown report block {kind!r}")
    return "\n".join(out).rstrip("\n") + "\n"


# --- HTML ---------------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
#: Cells that read as numbers (right-aligned in HTML): "12.3", "-0.5 [..]", "80.6%", "< 0.001".
_NUMBER = re.compile(r"^([-+<]\s?)?\d|^n/a$")


def _inline(text) -> str:
    return _CODE.sub(r"<code>\1</code>", html.escape(str(text), quote=False))


def _html_table(frame: pd.DataFrame, caption: str) -> list:
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{_inline(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in frame.columns)
               + "</tr></thead><tbody>")
    for row in frame.itertuples(index=False, name=None):
        out.append("<tr>" + "".join(
            f'<td class="n">{_inline(v)}</td>' if _NUMBER.match(str(v)) else
            f"<td>{_inline(v)}</td>" for v in row) + "</tr>")
    out.append("</tbody></table>")
    return out


def to_html(blocks, *, title: str) -> str:
    """A self-contained HTML page of a report's blocks (inline CSS, figures as base64 PNG)."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>"]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f"<p>{_inline(block[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            out += _html_table(block[1], block[2])
        elif kind == "figure":
            data = base64.b64encode(block[2]).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block[3])}" '
                       f'src="data:image/png;base64,{data}"><figcaption>'
                       f"{_inline(block[3])}</figcaption></figure>")
        elif kind == "code":
            out.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        else:
            raise ValueError(f"unknown report block {kind!r}")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
