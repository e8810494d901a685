"""nnforge's core: IR, op registry, verifier, interpreter, pass manager, pipeline language, API.

    from compiler import compile
    result = compile(model, example_inputs=(x,), pipeline="fold-bn,dce", target="onnx",
                     output="out.onnx")
"""
from compiler.api import CompileResult, compile

__all__ = ["CompileResult", "compile"]
