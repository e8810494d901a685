"""Packing rectangular pieces of weight matrices onto crossbar tiles.

A piece is a block of one group's matrix: a set of inputs (tile rows) by a set of outputs (tile
columns, each output taking `columns per output` physical columns). Pieces are placed along the
tile's diagonal: each takes fresh rows and fresh columns, so a row drives only its own piece's
columns and several small pieces (the groups of a depthwise conv, a narrow layer's remainder)
share one tile instead of wasting a tile each. A piece that does not fit what is left of the
current tile opens a new one; a full-size piece fills a tile alone.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Slot:
    tile: int       # tile index within the layer
    row: int        # first tile row
    col: int        # first physical tile column


def pack_diagonal(sizes: list[tuple[int, int]], rows: int, cols: int) -> tuple[list[Slot], int]:
    """Slots for pieces of the given (rows, physical columns) in order, and the tile count."""
    slots: list[Slot] = []
    tile, row_used, col_used = -1, rows, cols
    for r, c in sizes:
        if r > rows or c > cols:
            raise ValueError(f"a {r} x {c} piece does not fit a {rows} x {cols} tile")
        if row_used + r > rows or col_used + c > cols:
            tile, row_used, col_used = tile + 1, 0, 0
        slots.append(Slot(tile, row_used, col_used))
        row_used, col_used = row_used + r, col_used + c
    return slots, tile + 1
