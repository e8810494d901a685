"""The op registry: one entry per op is the single source of truth for it.

An `OpDef` holds the attribute schema, the input signature, the torch reference (as one torch
call, so the interpreter runs it and the PyTorch backend emits it verbatim), shape inference
(by default the reference run on meta tensors), the MAC count, the structure passes read (a
`WeightLayout` and `Trait` flags, `compiler/ops/interfaces.py`) and a verify hook for constraints
shape inference does not express. Frontends map into these ops, backends lower from them, the
verifier checks against them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Sequence

import torch

from compiler.errors import IRError
from compiler.ir import TensorType
from compiler.ops.interfaces import Trait, WeightLayout

REQUIRED = object()

TorchCall = tuple[Callable[..., Any] | str, tuple, dict]


INT32_MAX = 2**31 - 1  # torch's conv and pooling kernels take sizes and strides as 32-bit ints


@dataclass(frozen=True)
class Attr:
    """One attribute: its kind (int, float, bool, str, ints, floats, dtype, float?), default, choices,
    and for numbers (or each number of a list) the closed range [low, high] they must lie in."""

    kind: str
    default: Any = REQUIRED
    choices: tuple = ()
    doc: str = ""
    low: float | None = None
    high: float | None = None

    def check(self, op: str, name: str, value: Any) -> Any:
        ok, value = _coerce(self.kind, value)
        if not ok:
            raise IRError(f"op '{op}': attribute '{name}' expects {self.kind}, got {value!r}")
        if self.choices and value not in self.choices:
            raise IRError(f"op '{op}': attribute '{name}' must be one of {list(self.choices)}, got {value!r}")
        numbers = value if isinstance(value, tuple) else (value,) if isinstance(value, (int, float)) else ()
        if any(not (self.low is None or x >= self.low) or not (self.high is None or x <= self.high)
               for x in numbers):
            bounds = f">= {self.low}" if self.high is None else f"<= {self.high}" if self.low is None \
                else f"in [{self.low}, {self.high}]"
            raise IRError(f"op '{op}': attribute '{name}' must be {bounds}, got {value!r}")
        return value


POSITIVE = Attr("ints", low=1, high=INT32_MAX)       # kernel sizes, strides, dilations
NON_NEGATIVE = Attr("ints", low=0, high=INT32_MAX)   # paddings


def _coerce(kind: str, value: Any) -> tuple[bool, Any]:
    if kind.endswith("?"):
        return (True, None) if value is None else _coerce(kind[:-1], value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool), float(value) if isinstance(value, (int, float)) else value
    if kind == "bool":
        return isinstance(value, bool), value
    if kind == "str":
        return isinstance(value, str), value
    if kind in ("ints", "floats"):
        scalar = "int" if kind == "ints" else "float"
        if not isinstance(value, (list, tuple)):
            return False, value
        items = [_coerce(scalar, v) for v in value]
        return all(ok for ok, _ in items), tuple(v for _, v in items)
    if kind == "dtype":
        return isinstance(value, torch.dtype), value
    raise ValueError(f"unknown attribute kind {kind}")


def _zero_macs(inputs: list[TensorType | None], outputs: list[TensorType], attrs: dict) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    """Everything nnforge knows about one op."""

    name: str
    inputs: tuple[str, ...]
    torch_call: Callable[[list, dict], TorchCall]
    attrs: dict[str, Attr] = field(default_factory=dict)
    infer_fn: Callable[[list[TensorType | None], dict], list[TensorType]] | None = None
    macs_fn: Callable[[list[TensorType | None], list[TensorType], dict], int] = _zero_macs
    num_outputs: Callable[[dict], int] | None = None
    category: str = "misc"
    doc: str = ""
    foldable: bool = True  # False: keep the node even on constant inputs (fake_quant marks a format)
    layout: WeightLayout | None = None
    traits: Trait = Trait.NONE
    # problems shape inference cannot see (a clip with neither bound): (input types, attrs) -> messages
    verify_fn: Callable[[list[TensorType | None], dict], list[str]] | None = None

    def has(self, trait: Trait) -> bool:
        return bool(self.traits & trait) or (trait is Trait.LAYER and self.layout is not None)

    def verify(self, inputs: list[TensorType | None], attrs: dict) -> list[str]:
        """Constraints beyond shapes and the attribute schema; one message per problem."""
        return list(self.verify_fn(inputs, attrs)) if self.verify_fn is not None else []

    # ---- signature --------------------------------------------------------------------
    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[0].startswith("*")

    @cached_property
    def arity_range(self) -> tuple[int, int | None]:
        return self.arity()

    def attrs_valid(self, attrs: dict[str, Any]) -> bool:
        """Whether `attrs` is complete and well-typed (raises IRError naming a bad one); memoized."""
        try:
            key = (self.name, tuple((k, type(v), v) for k, v in attrs.items()))  # 1 is not True
            if key in _VALID_ATTRS:
                return True
        except TypeError:
            key = None
        valid = self.complete_attrs(attrs) == attrs
        if valid and key is not None:
            _VALID_ATTRS.add(key)
        return valid

    def arity(self) -> tuple[int, int | None]:
        """(min, max) number of inputs; max is None for variadic ops."""
        if self.variadic:
            return 1, None
        required = sum(1 for name in self.inputs if not name.endswith("?"))
        return required, len(self.inputs)

    def complete_attrs(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Validate attributes against the schema and fill in defaults."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise IRError(f"op '{self.name}' has no attribute(s) {sorted(unknown)}; "
                          f"known: {sorted(self.attrs)}")
        out = {}
        for name, spec in self.attrs.items():
            if name in attrs:
                out[name] = spec.check(self.name, name, attrs[name])
            elif spec.default is REQUIRED:
                raise IRError(f"op '{self.name}' needs attribute '{name}' ({spec.kind})")
            else:
                out[name] = spec.default
        return out

    # ---- semantics --------------------------------------------------------------------
    def run(self, inputs: Sequence[torch.Tensor | None], attrs: dict) -> list[torch.Tensor]:
        """Execute the torch reference implementation."""
        fn, args, kwargs = self.torch_call(list(inputs), attrs)
        result = getattr(args[0], fn)(*args[1:], **kwargs) if isinstance(fn, str) else fn(*args, **kwargs)
        return list(result) if isinstance(result, (tuple, list)) else [result]

    def infer(self, inputs: list[TensorType | None], attrs: dict) -> list[TensorType]:
        """Output types from input types: the op's own rule, or its reference run on meta tensors.

        Results are memoized on (op, input types, attributes): graphs repeat the same layer shapes,
        and the verifier re-infers every node after every pass.
        """
        try:
            key = (self.name, tuple(inputs), tuple(attrs.items()))
            hash(key)
        except TypeError:  # an unhashable attribute value: infer without the memo
            return self._infer(inputs, attrs)
        found = _INFER_MEMO.get(key)
        if found is None:
            found = _INFER_MEMO[key] = tuple(self._infer(inputs, attrs))
        return list(found)

    def _infer(self, inputs: list[TensorType | None], attrs: dict) -> list[TensorType]:
        if self.infer_fn is not None:
            return self.infer_fn(inputs, attrs)
        metas = [None if t is None else torch.empty(t.shape, dtype=t.dtype, device="meta") for t in inputs]
        try:
            results = self.run(metas, attrs)
        except Exception as exc:  # the reference rejected these shapes
            shapes = ", ".join("None" if t is None else f"{list(t.shape)}" for t in inputs)
            raise IRError(f"op '{self.name}' cannot take inputs of shape {shapes}: {exc}") from None
        return [TensorType.of(r) for r in results]

    def macs(self, inputs: list[TensorType | None], outputs: list[TensorType], attrs: dict) -> int:
        return int(self.macs_fn(inputs, outputs, attrs))


_REGISTRY: dict[str, OpDef] = {}
_INFER_MEMO: dict[tuple, tuple[TensorType, ...]] = {}
_VALID_ATTRS: set[tuple] = set()


def register_op(opdef: OpDef) -> OpDef:
    if opdef.name in _REGISTRY:
        raise ValueError(f"op '{opdef.name}' registered twice")
    _REGISTRY[opdef.name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise IRError(f"unknown op '{name}'") from None


def find_op(name: str) -> OpDef | None:
    """The op's definition, or None for a name nothing registered."""
    return _REGISTRY.get(name)


def all_ops() -> dict[str, OpDef]:
    return dict(_REGISTRY)


# ---- shared helpers for op definitions -------------------------------------------------
def same_as_first(inputs: list[TensorType | None], attrs: dict) -> list[TensorType]:
    return [inputs[0]]


def same_dtype(op: str, ins: list[TensorType | None]) -> None:
    """Weights, biases and statistics must have the input's dtype: torch's kernels do not promote."""
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in ins if t is not None})
    if len(dtypes) > 1:
        raise_shape(op, ins, f"its inputs mix dtypes {', '.join(dtypes)}")


def scalar_fits(op: str, ins: list[TensorType | None], name: str, value: float | None) -> None:
    """A scalar attribute torch converts to the input's dtype (a clip bound, a pad value) must fit it."""
    dtype = ins[0].dtype
    if value is None or dtype == torch.bool or (dtype.is_floating_point and not math.isfinite(value)):
        return
    info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise_shape(op, ins, f"{name}={value} does not fit {str(dtype).removeprefix('torch.')}")


def prod(xs: Sequence[int]) -> int:
    return math.prod(xs)


def raise_shape(op: str, ins: list[TensorType | None], why: str = ""):
    """Shape inference's one way to reject inputs."""
    shapes = ", ".join("None" if t is None else str(list(t.shape)) for t in ins)
    raise IRError(f"op '{op}' cannot take inputs of shape {shapes}" + (f": {why}" if why else ""))


def normalize_dim(op: str, ins: list[TensorType | None], dim: int, rank: int) -> int:
    if not -rank <= dim < max(rank, 1):
        raise_shape(op, ins, f"dim {dim} is out of range for rank {rank}")
    return dim % rank if rank else 0
