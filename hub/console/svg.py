"""A waterfall chart of a candidate's score as inline SVG: prior, then each field's
weight (log2 odds), ending at the total, with the link and review thresholds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

ROW = 22
LABEL_W = 190
CHART_W = 560
VALUE_W = 70
POS, NEG, TOTAL = "#2e7d32", "#c62828", "#37474f"


def log2_odds(p: float) -> float:
    p = min(max(p, 1e-300), 1 - 1e-16)
    return math.log2(p / (1 - p))


def waterfall(prior: float, fields: Sequence[tuple[str, str, float]],
              link: float, review: float) -> str:
    """prior: log2 prior odds; fields: (field, level, weight); link/review: probabilities."""
    steps: list[tuple[str, float, float, str]] = [("prior", 0.0, prior, TOTAL)]
    at = prior
    for name, level, weight in fields:
        colour = POS if weight >= 0 else NEG
        steps.append((f"{name} ({level})", at, at + weight, colour))
        at += weight
    steps.append(("total", 0.0, at, TOTAL))
    marks = [("link", log2_odds(link)), ("review", log2_odds(review))]
    values = [0.0, *(v for s in steps for v in s[1:3]), *(m[1] for m in marks)]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    lo, hi = lo - span * 0.03, hi + span * 0.03

    def x(v: float) -> float:
        return LABEL_W + (v - lo) / (hi - lo) * CHART_W

    top = 18
    height = top + ROW * len(steps) + 24
    width = LABEL_W + CHART_W + VALUE_W
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" width="{width}"'
           f' height="{height}" viewBox="0 0 {width} {height}" role="img"'
           ' aria-label="score waterfall: each field\'s weight in log2 odds">',
           '<style>text{font:11px sans-serif;fill:#222}.axis{stroke:#999}'
           '.mark{stroke-dasharray:4 3;stroke-width:1}</style>']
    for label, value in marks:
        mx = x(value)
        out.append(f'<line class="mark" x1="{mx:.1f}" y1="{top - 4}" x2="{mx:.1f}"'
                   f' y2="{height - 22}" stroke="#1565c0"/>')
        out.append(f'<text x="{mx:.1f}" y="{top - 7}" text-anchor="middle"'
                   f' style="fill:#1565c0">{escape(label)}</text>')
    zx = x(0.0)
    out.append(f'<line class="axis" x1="{zx:.1f}" y1="{top - 4}" x2="{zx:.1f}"'
               f' y2="{height - 22}"/>')
    for i, (label, start, end, colour) in enumerate(steps):
        y = top + i * ROW
        left, right = sorted((x(start), x(end)))
        out.append(f'<text x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">'
                   f'{escape(label)}</text>')
        out.append(f'<rect x="{left:.1f}" y="{y + 4}" width="{max(right - left, 1.5):.1f}"'
                   f' height="{ROW - 8}" fill="{colour}"><title>{escape(label)}:'
                   f' {end - start:+.2f}</title></rect>')
        if 0 < i < len(steps) - 1:  # connector to the next step
            out.append(f'<line x1="{x(end):.1f}" y1="{y + ROW - 4}" x2="{x(end):.1f}"'
                       f' y2="{y + ROW + 4}" stroke="#777"/>')
        shown = end if i in (0, len(steps) - 1) else end - start
        sign = "" if i in (0, len(steps) - 1) else "+" if shown >= 0 else ""
        out.append(f'<text x="{LABEL_W + CHART_W + 6}" y="{y + 15}">{sign}{shown:.2f}</text>')
    out.append(f'<text x="{LABEL_W}" y="{height - 6}">{lo:.0f}</text>')
    out.append(f'<text x="{LABEL_W + CHART_W / 2:.0f}" y="{height - 6}" text-anchor="middle"'
               ' class="muted">log2 odds (0 = even chance)</text>')
    out.append(f'<text x="{LABEL_W + CHART_W}" y="{height - 6}" text-anchor="end">'
               f'{hi:.0f}</text>')
    out.append("</svg>")
    return "".join(out)
