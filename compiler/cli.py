"""The `nnforge` command line: compile, inspect, passes.

Every user error (bad pipeline, model, shape, file) is one message on stderr and exit code 2;
`--debug` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from compiler.errors import NNForgeError, UserInputError
from compiler.model_loader import load_model, parse_shape

EXIT_USER_ERROR = 2
PIPE_WIDTH = 120  # rich assumes 80 columns when output is not a terminal; tables need more


def _stdout_console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=PIPE_WIDTH)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    err = Console(stderr=True, highlight=False)
    try:
        return args.run(args)
    except NNForgeError as exc:
        if args.debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {escape(exc.render())}", markup=True, soft_wrap=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nnforge", description="A compiler for neural networks.")
    parser.set_defaults(command=None)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(title="commands")

    compile_ = sub.add_parser("compile", parents=[common], help="compile a model through a pipeline to targets")
    _model_args(compile_)
    compile_.add_argument("--pipeline", default="", metavar="SPEC_OR_FILE",
                          help="inline pipeline (fold-bn,dce) or a pipeline file")
    compile_.add_argument("--target", default=None,
                          help="comma-separated targets with options (pytorch, onnx, 'onnx{opset=21}', or all); "
                               "a target the pipeline file names keeps that line's options")
    compile_.add_argument("-o", "--output", type=Path, default=None,
                          help="output path; with several targets, a directory holding one output each")
    compile_.add_argument("--report", type=Path, default=None, help="write the JSON report here")
    compile_.add_argument("--check-equivalence", action="store_true",
                          help="compare outputs before/after every pass and of every artifact")
    compile_.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass")
    compile_.add_argument("--no-verify", action="store_true", help="skip IR verification after each pass")
    compile_.add_argument("--calibration-data", type=Path, default=None, metavar="FILE.npy|.npz",
                          help="batches for calibrating passes (quantize); default: the example inputs")
    compile_.add_argument("--reproducer-dir", type=Path, default=None,
                          help="where crash reproducers go (default: the temp dir)")
    compile_.set_defaults(command="compile", run=_cmd_compile)

    inspect = sub.add_parser("inspect", parents=[common], help="per-layer table of a model")
    _model_args(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the IR text instead of the table")
    inspect.add_argument("--groups", action="store_true",
                         help="print the channel-coupling groups that structured pruning removes together")
    inspect.set_defaults(command="inspect", run=_cmd_inspect)

    passes = sub.add_parser("passes", parents=[common], help="list passes and their options")
    passes.set_defaults(command="passes", run=_cmd_passes)
    return parser


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path/to/file.py:callable, package.module:callable, or a model file")
    p.add_argument("--input-shape", action="append", default=None, metavar="1x3x224x224",
                   help="static shape of an input (repeat once per input, in order)")


def _load(args):
    from compiler.frontend import import_model

    loaded = load_model(args.model)
    shapes = [parse_shape(s) for s in args.input_shape] if args.input_shape else None
    inputs = loaded.example_inputs
    if shapes is not None and inputs is not None and [tuple(t.shape) for t in inputs] != shapes:
        inputs = None  # the user asked for other shapes than the factory's examples
    if shapes is None and inputs is None and not isinstance(loaded.model, Path):
        raise UserInputError(f"no input shape for '{args.model}'",
                             hint="pass --input-shape (e.g. 1x3x224x224), or return (module, example_inputs)")
    return loaded, inputs, shapes, import_model


def _cmd_compile(args) -> int:
    from compiler import calibration
    from compiler.api import compile
    from compiler.backend import all_backends
    from compiler.cli_render import print_report, progress
    from compiler.pipeline import split_targets

    loaded, inputs, shapes, _ = _load(args)
    targets = None
    if args.target:
        names = split_targets(args.target)
        targets = list(all_backends()) if names == ["all"] else names
    outputs = _outputs(targets, args.output)
    console = Console(stderr=True)
    with progress(console) as on_pass:
        result = compile(loaded.model, example_inputs=inputs, pipeline=args.pipeline, target=targets,
                         output=outputs, input_shapes=shapes, verify_each=not args.no_verify,
                         check_equivalence=args.check_equivalence,
                         print_ir_after_all=args.print_ir_after_all,
                         reproducer_dir=args.reproducer_dir, on_pass=on_pass,
                         calibration_data=calibration.load_file(args.calibration_data)
                         if args.calibration_data else None)
    if args.report is not None:
        result.report.write(args.report)
    console = _stdout_console()
    print_report(console, result.report)
    for artifact in result.artifacts:   # a target with its own report (hls: the stage table)
        render = getattr(artifact.obj, "render", None)
        if callable(render):
            render(console)
    return 0


def _outputs(targets, output: Path | None):
    if targets is None or output is None:
        return output
    if len(targets) == 1:
        return output
    from compiler.backend import get_backend
    from compiler.pipeline import parse_target
    backends = [get_backend(parse_target(t).name) for t in targets]
    return [output / f"model{b.suffix}" if b.suffix else output / b.name for b in backends]


def _cmd_inspect(args) -> int:
    from compiler.cli_render import print_layers
    from compiler.printer import print_graph

    loaded, inputs, shapes, import_model = _load(args)
    graph = import_model(loaded.model, inputs, shapes)
    if args.ir:
        sys.stdout.write(print_graph(graph))
    elif args.groups:
        from compiler.passes import get_pass
        sys.stdout.write(get_pass("prune").describe_groups(graph))
    else:
        print_layers(_stdout_console(), graph)
    return 0


def _cmd_passes(args) -> int:
    from compiler.cli_render import print_passes

    print_passes(_stdout_console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
