"""Plugin package: importing it registers its members."""
from backends import onnx, pytorch  # noqa: F401
