"""Plugin package: importing it registers its members."""
from backends import crossbar, hls, onnx, pytorch  # noqa: F401
