"""Plugin package: importing it registers its members."""
from passes import canonicalize, dce, fold_bn, fold_constants  # noqa: F401
from passes import reparam  # noqa: F401
from passes import quantize  # noqa: F401  (quantize, fold-preshifted-bias)
from passes import prune  # noqa: F401
from passes import block_conv  # noqa: F401
from passes import simd_sparsity  # noqa: F401  (simd-sparsify)
from passes import integerize  # noqa: F401
from passes import conv_transpose_as_conv  # noqa: F401
from passes import resize_as_conv  # noqa: F401
