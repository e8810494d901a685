"""FPGA parts the HLS backend sizes designs for: their resources, from the vendors' product tables.

`part=` accepts the short name (`zu7ev`), the full part number Vitis HLS takes
(`xczu7ev-ffvc1156-2-e`), its prefix (`xczu7ev`) or a board name (`zcu104`, `pynq-z2`, `u250`).
Block RAM is counted in 18 Kb halves (a 36 Kb block is two), as HLS reports it.
"""
from __future__ import annotations

from dataclasses import dataclass

from compiler.errors import PipelineError
from compiler.suggest import did_you_mean


@dataclass(frozen=True)
class Part:
    name: str
    device: str            # what Vitis HLS's -part takes
    family: str
    boards: tuple[str, ...]
    lut: int
    ff: int
    bram18: int
    uram: int
    dsp: int
    dsp_shape: tuple[int, int]   # signed multiplier inputs of one DSP slice (DSP48E1 25x18, DSP48E2 27x18)
    typical_mhz: float           # a clock dataflow designs commonly close timing at

    def budget(self) -> dict[str, int]:
        return {"DSP": self.dsp, "LUT": self.lut, "BRAM18": self.bram18, "URAM": self.uram}


PARTS: dict[str, Part] = {p.name: p for p in (
    Part("z7020", "xc7z020clg400-1", "Zynq-7000", ("pynq-z1", "pynq-z2", "zedboard", "zybo-z7-20"),
         lut=53_200, ff=106_400, bram18=280, uram=0, dsp=220, dsp_shape=(25, 18), typical_mhz=100.0),
    Part("zu3eg", "xczu3eg-sbva484-1-e", "Zynq UltraScale+", ("ultra96", "ultra96v2"),
         lut=70_560, ff=141_120, bram18=432, uram=0, dsp=360, dsp_shape=(27, 18), typical_mhz=200.0),
    Part("k26", "xck26-sfvc784-2LV-c", "Zynq UltraScale+", ("kv260", "kr260"),
         lut=117_120, ff=234_240, bram18=288, uram=64, dsp=1_248, dsp_shape=(27, 18), typical_mhz=250.0),
    Part("zu7ev", "xczu7ev-ffvc1156-2-e", "Zynq UltraScale+", ("zcu104", "zcu106"),
         lut=230_400, ff=460_800, bram18=624, uram=96, dsp=1_728, dsp_shape=(27, 18), typical_mhz=250.0),
    Part("zu9eg", "xczu9eg-ffvb1156-2-e", "Zynq UltraScale+", ("zcu102",),
         lut=274_080, ff=548_160, bram18=1_824, uram=0, dsp=2_520, dsp_shape=(27, 18), typical_mhz=250.0),
    Part("u250", "xcu250-figd2104-2L-e", "Alveo", ("alveo-u250",),
         lut=1_728_000, ff=3_456_000, bram18=5_376, uram=1_280, dsp=12_288, dsp_shape=(27, 18), typical_mhz=300.0),
)}


def _spellings() -> dict[str, str]:
    names: dict[str, str] = {}
    for p in PARTS.values():
        for spelling in (p.name, p.device, p.device.split("-")[0], *p.boards):
            names[spelling.lower()] = p.name
    names["xc7z020"] = names["zynq-7020"] = names["7020"] = "z7020"
    return names


def get_part(name: str) -> Part:
    """The part a `part=` option names; an unknown name suggests the close ones."""
    spellings = _spellings()
    key = name.strip().lower()
    if key in spellings:
        return PARTS[spellings[key]]
    for spelling, short in spellings.items():   # a full part number with another package or speed grade
        if spelling.startswith("xc") and key.startswith(spelling.split("-")[0]) and "-" in key:
            return PARTS[short]
    raise PipelineError(f"target 'hls': unknown part '{name}'{did_you_mean(key, spellings)}",
                        hint="known parts: " + ", ".join(f"{p.name} ({p.device})" for p in PARTS.values()))
