"""Plugin package: importing it registers its members."""
from backends import crossbar, onnx, pytorch  # noqa: F401
