"""Plugin package: importing it registers its members."""
from backends import hls, onnx, pytorch  # noqa: F401
