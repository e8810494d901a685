"""Errors the user can act on. The CLI prints them as one message and exits with code 2."""
from __future__ import annotations


class NNForgeError(Exception):
    """An error with what went wrong, where, and what to do about it."""

    def __init__(self, what: str, *, where: str = "", hint: str = ""):
        self.what, self.where, self.hint = what, where, hint
        super().__init__(self.render())

    def render(self) -> str:
        text = self.what
        if self.where:
            text += f"\n  at: {self.where}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class IRError(NNForgeError):
    """The IR (or an op applied to it) is malformed."""


class VerificationError(IRError):
    """The verifier found broken invariants."""


class PipelineError(NNForgeError):
    """The pipeline text or a pass option is wrong."""


class FrontendError(NNForgeError):
    """A model could not be brought into the IR."""


class BackendError(NNForgeError):
    """The IR could not be lowered to a target."""


class UserInputError(NNForgeError):
    """A file, shape or argument given by the user is unusable."""
