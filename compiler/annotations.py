"""Typed annotations on values and nodes.

Passes attach facts that later passes and backends read (quantization format, sparsity masks,
tiling groups). Each kind is a frozen dataclass subclassing `Annotation`, stored by its class, so
a reader asks for the type it understands instead of probing dict keys.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TypeVar

A = TypeVar("A", bound="Annotation")
ANNOTATION_TAGS: dict[str, type["Annotation"]] = {}  # printed tag -> class, for the IR parser


@dataclass(frozen=True)
class Annotation:
    """Base of all annotations. `tag` is the short name the printer shows."""

    tag = "annotation"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ANNOTATION_TAGS[cls.tag] = cls

    def describe(self) -> str:
        parts = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{self.tag}<{parts}>"

    def references(self) -> tuple[str, ...]:
        """Names of the graph values this annotation points at; the verifier checks they exist.
        A pass that renames or replaces such a value updates (or drops) the annotation."""
        return ()


class Annotated:
    """Mixin holding annotations keyed by their class."""

    __slots__ = ("annotations",)

    def __init__(self) -> None:
        self.annotations: dict[type, Annotation] = {}

    def annotate(self, annotation: Annotation) -> None:
        self.annotations[type(annotation)] = annotation

    def annotation(self, kind: type[A]) -> A | None:
        found = self.annotations.get(kind)
        return found  # type: ignore[return-value]

    def drop_annotation(self, kind: type[Annotation]) -> None:
        self.annotations.pop(kind, None)
