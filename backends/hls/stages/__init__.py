"""Dataflow stage kinds of the HLS backend (one module per kind, one base in base.py)."""
from backends.hls.stages.base import PARTITION_LIMIT, Port, Stage
from backends.hls.stages.epilogue import Elementwise
from backends.hls.stages.mvu import MVU
from backends.hls.stages.pool import GlobalSum, MaxPool
from backends.hls.stages.reorder import Reorder
from backends.hls.stages.sparse_mvu import SparseMVU, matrix_unit
from backends.hls.stages.streams import Add, Concat, Dup, Pointwise
from backends.hls.stages.window import Geometry, LineBufferWindow, Splitter

__all__ = ["Add", "Concat", "Dup", "Elementwise", "Geometry", "GlobalSum", "LineBufferWindow", "MVU", "MaxPool",
           "PARTITION_LIMIT", "Pointwise", "Port", "Reorder", "SparseMVU", "Splitter", "Stage",
           "matrix_unit"]
