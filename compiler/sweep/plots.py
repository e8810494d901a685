"""Pareto plots as self-contained SVG (matplotlib, text as paths): every point is a link to its
folder, the front is drawn over the rest and numbered with the points' indices."""
from __future__ import annotations

import io
from typing import Any, Sequence

from compiler.errors import UserInputError
from compiler.sweep.pareto import LOWER, Front, is_number

INSTALL = "pip install 'nnforge[sweep]'   (or: pip install matplotlib)"


def require_matplotlib() -> None:
    """Fail before a sweep runs, not after, when the HTML report cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserInputError("the sweep's HTML report needs matplotlib, which is not installed",
                             hint=INSTALL) from None


def front_svg(front: Front, rows: Sequence[dict[str, Any]], links: Sequence[str], salt: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    usable = [i for i, r in enumerate(rows) if is_number(r.get(front.x.column)) and is_number(r.get(front.y.column))]
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(5.6, 3.8))
        try:
            rest = [i for i in usable if i not in front.members]
            if rest:
                dots = ax.scatter([rows[i][front.x.column] for i in rest], [rows[i][front.y.column] for i in rest],
                                  s=22, color="#9aa5b1", label="dominated", zorder=2)
                dots.set_urls([links[i] for i in rest])
            xs = [rows[i][front.x.column] for i in front.members]
            ys = [rows[i][front.y.column] for i in front.members]
            # the front as the staircase it is: between two front points only the worse y is attainable
            ax.plot(xs, ys, color="#d9480f", linewidth=1.2, zorder=3,
                    drawstyle="steps-post" if front.x.better == LOWER else "steps-pre")
            best = ax.scatter(xs, ys, s=40, color="#d9480f", edgecolor="black", linewidth=0.5,
                              label="Pareto front", zorder=4)
            best.set_urls([links[i] for i in front.members])
            for i, x, y in zip(front.members, xs, ys):
                ax.annotate(str(rows[i]["point"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
            values = [rows[i][front.x.column] for i in usable]
            if min(values) > 0 and max(values) / min(values) > 30:
                ax.set_xscale("log")
            ax.set_xlabel(f"{front.x.label}, {front.x.better} is better")
            ax.set_ylabel(f"{front.y.label}, {front.y.better} is better")
            ax.set_title(front.title)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", fontsize=7)
            fig.tight_layout()
            out = io.StringIO()
            fig.savefig(out, format="svg")
        finally:
            plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]  # inline: drop the XML prolog and doctype
