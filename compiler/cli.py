"""The `nnforge` command line: compile, inspect, sparsity-latency, passes; report and sweep (cli_costs.py).

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

from compiler.cli_costs import add_commands as add_cost_commands
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
    compile_.add_argument("-o", "--output", type=_path_arg, default=None,
                          help="output path; with several targets, a directory holding one output each")
    compile_.add_argument("--report", type=_path_arg, default=None, help="write the JSON report here")
    compile_.add_argument("--check-equivalence", action="store_true",
                          help="compare outputs before/after every pass and of every artifact")
    compile_.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass")
    compile_.add_argument("--no-verify", action="store_true", help="skip IR verification after each pass")
    compile_.add_argument("--calibration-data", default=None, metavar="FILE.npy|.npz|random",
                          help="real input batches for passes that calibrate (activation quantization, "
                               "searches); required by them. 'random' calibrates on noise, on purpose")
    compile_.add_argument("--reproducer-dir", type=_path_arg, default=None,
                          help="where crash reproducers go (default: a private folder of yours in the temp dir)")
    compile_.add_argument("--max-memory", default=None, metavar="SIZE",
                          help="bound on what inputs, checks and data files may allocate (default 4GiB, "
                               "or $NNFORGE_MAX_MEMORY)")
    compile_.set_defaults(command="compile", run=_cmd_compile)

    inspect = sub.add_parser("inspect", parents=[common], help="per-layer table of a model")
    _model_args(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the IR text instead of the table")
    inspect.add_argument("--groups", action="store_true",
                         help="print the channel-coupling groups that structured pruning removes together")
    inspect.add_argument("--block-conv", default=None, metavar="OPTIONS",
                         help="block convolution's memory analysis under these block-conv options, "
                              "e.g. 'pattern=fixed,block=28,buffer-kb=2048' ('' for the defaults)")
    inspect.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                         help="with --block-conv: also draw per-layer buffers and traffic")
    inspect.set_defaults(command="inspect", run=_cmd_inspect)

    latency = sub.add_parser("sparsity-latency", parents=[common],
                             help="measure the sparse kernel per layer at several densities (simd-sparsify's latency model)")
    _model_args(latency)
    latency.add_argument("--simd", type=int, choices=(4, 8, 16), default=None,
                         help="output channels per SIMD group (default: the host's fp32 lanes)")
    latency.add_argument("--pipeline", default="", metavar="SPEC_OR_FILE",
                         help="passes to run first (fold-bn folds BatchNorm into the convs as deployed)")
    latency.add_argument("--layer", default=None, help="only layers matching this name or glob")
    latency.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                         help="plot latency against density for the first matching layer")
    latency.set_defaults(command="sparsity-latency", run=_cmd_sparsity_latency)

    passes = sub.add_parser("passes", parents=[common], help="list passes and their options")
    passes.set_defaults(command="passes", run=_cmd_passes)
    add_cost_commands(sub, common, _model_args)
    return parser


def _path_arg(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty")
    return Path(text)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="path/to/file.py:callable, package.module:callable, or a model file")
    p.add_argument("--input-shape", action="append", default=None, metavar="1x3x224x224",
                   help="static shape of an input (repeat once per input, in order)")
    p.add_argument("--capture", choices=("auto", "export", "fx"), default="auto",
                   help="how a torch model is captured: torch.export, torch.fx symbolic tracing, or auto "
                        "(export, falling back to fx); see docs/capture.md")


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
    from compiler.memory import memory_limit

    with memory_limit(args.max_memory):
        return _compile(args)


def _compile(args) -> int:
    from compiler.api import compile
    from compiler.atomic import transaction
    from compiler.backend import all_backends
    from compiler.cli_render import print_report, progress
    from compiler.pipeline import split_targets

    loaded, inputs, shapes, _ = _load(args)
    calibration_data = _calibration_data(args)
    targets = None
    if args.target is not None:
        names = split_targets(args.target)
        if not names:
            raise UserInputError(f"--target '{args.target}' names no target",
                                 hint=f"name one or more of: {', '.join(all_backends())}, or all")
        targets = list(all_backends()) if names == ["all"] else names
    outputs = _outputs(targets, args.output)
    console = Console(stderr=True)
    with transaction(), progress(console) as on_pass:  # outputs and report are written together, or not at all
        result = compile(loaded.model, example_inputs=inputs, pipeline=args.pipeline, target=targets,
                         output=outputs, input_shapes=shapes, verify_each=not args.no_verify,
                         check_equivalence=args.check_equivalence,
                         print_ir_after_all=args.print_ir_after_all,
                         reproducer_dir=args.reproducer_dir, on_pass=on_pass,
                         calibration_data=calibration_data, capture=args.capture)
        if args.report is not None:
            result.report.write(args.report)
    console = _stdout_console()
    print_report(console, result.report)
    for artifact in result.artifacts:   # a target with its own report (hls: the stage table)
        render = getattr(artifact.obj, "render", None)
        if callable(render):
            render(console)
    return 0


def _calibration_data(args, passes=None):
    """The --calibration-data file's arrays, "random", or None when no pass calibrates; a pass that
    calibrates without real data is an error (its ranges would silently fit noise). `passes`: the
    passes to check (default: the --pipeline's)."""
    from compiler import calibration
    from compiler.api import RANDOM
    from compiler.pipeline import load_pipeline

    if args.calibration_data == RANDOM:
        return RANDOM
    if args.calibration_data is not None:
        return calibration.load_file(args.calibration_data)
    if passes is None:
        passes = load_pipeline(args.pipeline).passes if args.pipeline.strip() else ()
    calibrating = [str(p) for p in passes if p.calibrates()]
    if calibrating:
        raise UserInputError(
            f"{', '.join(calibrating)} calibrates on input data, and no --calibration-data was given",
            hint="save real inputs as an .npy (one input: [N, ...] batches) or .npz (one array per input "
                 "name) file and pass --calibration-data FILE; --calibration-data random calibrates on "
                 "noise on purpose (outputs may move far more than with real data)")
    return None


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

    if args.plot is not None and args.block_conv is None:
        raise UserInputError("--plot draws the block convolution analysis", hint="add --block-conv OPTIONS")
    loaded, inputs, shapes, import_model = _load(args)
    graph = import_model(loaded.model, inputs, shapes, capture=args.capture)
    if args.ir:
        sys.stdout.write(print_graph(graph))
    elif args.groups:
        from compiler.passes import get_pass
        sys.stdout.write(get_pass("prune").describe_groups(graph))
    elif args.block_conv is not None:
        from compiler.pipeline import parse_pipeline
        block_conv = parse_pipeline(f"block-conv{{{args.block_conv}}}" if args.block_conv else "block-conv")
        sys.stdout.write(block_conv.passes[0].describe_memory(graph, plot=args.plot))
    else:
        print_layers(_stdout_console(), graph)
    return 0


def _cmd_sparsity_latency(args) -> int:
    from compiler.api import compile
    from compiler.passes import get_pass

    loaded, inputs, shapes, _ = _load(args)
    graph = compile(loaded.model, inputs, pipeline=args.pipeline, input_shapes=shapes).graph
    sys.stdout.write(get_pass("simd-sparsify").latency_report(graph, simd=args.simd, layer=args.layer,
                                                                 plot=args.plot))
    return 0


def _cmd_passes(args) -> int:
    from compiler.cli_render import print_passes

    print_passes(_stdout_console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
