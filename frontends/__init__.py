"""Plugin package: importing it registers its members."""
from frontends import ir_text, onnx, torch_capture  # noqa: F401  (each registers its frontend)
