"""Capture speed: torch.export vs torch.fx, and whole compiles vs PyTorch's ONNX exporter.

On BERT-shaped transformers (the zoo's fx-traceable BERT, and Hugging Face `BertModel` from a
config, random init) and the standard ResNet-50 (tests/zoo), measured in one run:

* capture: `torch.export` (export + decomposition) and nnforge's translation of its graph into
  the IR, against symbolic tracing (`capture="fx"`);
* whole compile: `compile(model, inputs, "fold-bn,dce", "onnx")` with the default capture,
  against `torch.onnx.export` (TorchScript-based, dynamo=False) on the same model.

    python bench/capture.py            # BERT-base shape (12 layers, 768 wide, seq 128), ResNet-50 at 224
    python bench/capture.py --quick    # 4 layers, 256 wide, seq 64; ResNet-50 at 112
"""
from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler import compile  # noqa: E402
from compiler.frontend import import_with_facts  # noqa: E402
from tests import zoo  # noqa: E402


def hf_bert(layers: int, width: int, seq: int):
    import transformers
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=width, num_hidden_layers=layers,
                                     num_attention_heads=width // 64, intermediate_size=4 * width)
    ids = torch.randint(1, 30522, (1, seq))
    return transformers.BertModel(config).eval(), (ids, torch.ones_like(ids))


def best_of(repeat: int, fn, *args) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times)


def onnx_export(module, inputs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs), io.BytesIO(), dynamo=False)


def capture_split(module, inputs) -> tuple[float, float]:
    """(torch.export seconds, IR translation seconds) of one export capture."""
    facts = import_with_facts(module, inputs, capture="export").facts
    return facts["seconds"]["export"], facts["seconds"]["translate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller models (about a minute)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    layers, width, seq, size = (4, 256, 64, 112) if args.quick else (12, 768, 128, 224)
    bert = zoo.build("bert", batch=1, seq_len=seq, vocab_size=30522, hidden=width, num_layers=layers,
                     num_heads=width // 64, max_position=512)
    resnet = zoo.build("resnet50", input_size=size)
    rows = [("bert", bert.module, bert.example_inputs), ("hf-bert", *hf_bert(layers, width, seq)),
            ("resnet50", resnet.module, resnet.example_inputs)]
    print(f"{'model':9} {'export s':>9} {'translate s':>12} {'translate/export':>17} {'fx s':>7} {'export/fx':>10} "
          f"{'compile s':>10} {'onnx.export s':>14} {'compile/onnx.export':>20}")
    for name, module, inputs in rows:
        captures = [capture_split(module, inputs) for _ in range(args.repeat)]
        export_s, translate_s = min(c[0] for c in captures), min(c[1] for c in captures)
        fx_s = attempt(args.repeat, lambda: import_with_facts(module, inputs, capture="fx"))
        compile_s = best_of(args.repeat, lambda: compile(module, inputs, "fold-bn,dce", "onnx"))
        peer_s = attempt(args.repeat, lambda: onnx_export(module, inputs))
        print(f"{name:9} {export_s:9.3f} {translate_s:12.3f} {translate_s / export_s:17.3f} {fmt(fx_s, 7)} "
              f"{fmt(fx_s and export_s / fx_s, 10)} {compile_s:10.3f} {fmt(peer_s, 14)} "
              f"{fmt(peer_s and compile_s / peer_s, 20)}")
    print("n/a: that path cannot capture the model (Hugging Face BERT is neither fx-traceable nor "
          "accepted by the TorchScript ONNX exporter)")


def attempt(repeat: int, fn) -> float | None:
    """best_of, or None when the peer cannot handle the model at all."""
    try:
        return best_of(repeat, fn)
    except Exception:  # noqa: BLE001 - a peer's failure is a result here, not an error
        return None


def fmt(value: float | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.3f}"

if __name__ == "__main__":
    main()
