"""Structured sparsity in the core: the typed annotation and the SIMD-group sparse kernel.

`annotation.py` says which pattern a weight follows; `packing.py` turns a zeroed weight into the
kernel's compressed form (nonzero groups and where their inputs live); `runtime.py` runs a layer
through the C++ kernel (`kernel.cpp`), which `build.py` compiles on first use and caches.
"""
from compiler.sparse.annotation import SparsityAnnotation

__all__ = ["SparsityAnnotation"]
