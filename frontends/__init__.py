"""Plugin package: importing it registers its members."""
from frontends import ir_text, torch_fx  # noqa: F401  (registers the torch.fx frontend)
