"""Readable views of the memory analysis: a per-layer table with schedule totals, and a PNG.

`describe` is what `nnforge inspect MODEL --block-conv OPTIONS` prints; `plot_memory` draws the
per-layer on-chip buffer of the two fusing schedules and the off-chip traffic of all three
(matplotlib, imported only when drawing).
"""
from __future__ import annotations

from pathlib import Path

from compiler.atomic import atomic_path
from compiler.errors import UserInputError
from compiler.ir import Graph
from passes.block_conv.memory import SCHEDULES, TITLES, Analysis
from passes.block_conv.plan import Options, Plan

KB = 1024


def describe(graph: Graph, decisions: Plan, analysis: Analysis, options: Options) -> str:
    sg, schedules = analysis.sg, analysis.schedules
    fused = schedules["fused"]
    group_of = {s: gi for gi, g in enumerate(fused.groups) for s in g.stages}
    lines = [f"graph {graph.name}: block-conv {options.label} ({options.padding} padding), "
             f"{len(decisions.blocked)} of {len(decisions.decisions)} conv/pool layers blocked; "
             f"budget {analysis.budget / KB:g} KB, {_bits(analysis)}",
             "",
             "off-chip KB per frame under layer-by-layer (lbl) and fused-block schedules; on-chip KB of "
             "the line buffers and of one fused tile",
             f"{'layer':<28} {'op':<17} {'map':>12} {'blocks':>7} {'group':>5} "
             f"{'lbl off-chip':>12} {'line buf':>9} {'fused buf':>9} {'fused off-chip':>14}"]
    layer_traffic = schedules["layer"]
    for stage in sg.stages:
        if stage.layer is None:
            continue
        x = stage.layer.inputs[0]
        shape = "x".join(str(d) for d in x.shape[1:]) if x.rank == 4 else str(x.shape[-1])
        i = stage.index
        grid = f"{stage.grid[0]}x{stage.grid[1]}"
        lines.append(f"{stage.name[:28]:<28} {stage.layer.op:<17} {shape:>12} {grid:>7} {group_of[i]:>5} "
                     f"{(layer_traffic.stage_in[i] + layer_traffic.stage_out[i]) / KB:>12.1f} "
                     f"{schedules['line'].stage_buffer[i] / KB:>9.1f} {fused.stage_buffer[i] / KB:>9.1f} "
                     f"{(fused.stage_in[i] + fused.stage_out[i]) / KB:>14.1f}")
    lines.append("")
    lines.append(f"{'schedule':<22} {'groups':>6} {'fused':>6} {'buffer KB':>10} {'feature-map KB':>15} "
                 f"{'weights KB':>11} {'vs layer':>9}")
    base = schedules["layer"].traffic
    for name in SCHEDULES:
        s = schedules[name]
        buffer = "-" if name == "layer" else f"{s.peak_buffer / KB:.1f}"
        ratio = base / s.traffic if s.traffic else float("inf")
        lines.append(f"{TITLES[name]:<22} {len(s.groups):>6} {len(s.fused_groups):>6} {buffer:>10} "
                     f"{s.traffic / KB:>15.1f} {s.weight_traffic / KB:>11.1f} {ratio:>8.2f}x")
    over = [analysis.index[g.stages[0]].name for g in fused.groups if not g.fits]
    if over:
        lines.append(f"over budget even alone (run layer by layer): {', '.join(over)}")
    unblocked = decisions.describe_unblocked()
    if unblocked:
        lines.append(f"unblocked: {unblocked}")
    return "\n".join(lines) + "\n"


def _bits(analysis: Analysis) -> str:
    widths = sorted(set(analysis.sg.value_bits.values()))
    return f"{'/'.join(f'{b:g}' for b in widths)}-bit maps"


def plot_memory(analysis: Analysis, path: Path | str, title: str = "") -> None:
    """Per-layer buffer (line-buffer and fused schedules) and off-chip traffic (all three)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("drawing the memory plot needs matplotlib", hint="pip install matplotlib") from None
    stages = [s for s in analysis.sg.stages if s.layer is not None]
    names = [s.name for s in stages]
    xs = range(len(stages))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8.0, 0.32 * len(stages)), 7.5), sharex=True)
    for name, marker in (("line", "s"), ("fused", "o")):
        values = [analysis.schedules[name].stage_buffer[s.index] / KB for s in stages]
        top.plot(xs, values, marker=marker, label=TITLES[name])
    top.axhline(analysis.budget / KB, color="grey", linestyle="--", label="budget")
    top.set_ylabel("on-chip buffer (KB)")
    top.set_yscale("symlog", linthresh=1.0)
    top.set_ylim(bottom=0)
    top.legend(fontsize=8)
    width = 0.28
    for k, name in enumerate(("layer", "line", "fused")):
        s = analysis.schedules[name]
        values = [(s.stage_in[st.index] + s.stage_out[st.index]) / KB for st in stages]
        bottom.bar([x + (k - 1) * width for x in xs], values, width=width,
                   label=f"{TITLES[name]} ({s.traffic / KB / KB:.2f} MB)")
    bottom.set_ylabel("off-chip feature-map traffic (KB/frame)")
    bottom.set_yscale("symlog", linthresh=1.0)
    bottom.set_ylim(bottom=0)
    bottom.legend(fontsize=8)
    bottom.set_xticks(list(xs))
    bottom.set_xticklabels(names, rotation=90, fontsize=7)
    if title:
        top.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
