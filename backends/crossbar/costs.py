"""The constants behind the energy, latency and area estimates, each with its source.

One place to read and change them: `CostParameters()` holds the defaults; pass another instance
to `estimates.estimate` to study a different process or design. Units are SI (J, s, m^2, V, S).

Sources
* NeuroSim V1.3 (DNN_NeuroSim_V1.3, Inference_pytorch/NeuroSIM/Param.cpp, Peng et al., IEDM 2019):
  read voltage 0.5 V, read pulse 10 ns, 1T1R cell 4F x 12F, feature size 40 nm, 8 columns per
  ADC (numColMuxed), 1 GHz digital clock.
* ISAAC (Shafiee et al., ISCA 2016, Table I, 32 nm): an 8-bit 1.28 GS/s ADC draws 2 mW in
  0.0012 mm^2 (16 mW and 0.0096 mm^2 for 8); 8 x 128 1-bit DACs draw 4 mW in 0.00017 mm^2 with a
  100 ns crossbar cycle; a shift-and-add unit takes 0.00006 mm^2 (0.00024 mm^2 for 4).
* Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm): 32-bit integer add 0.1 pJ, 8-bit
  multiply 0.2 pJ and add 0.03 pJ, FP32 add 0.9 pJ, an 8 KB SRAM read of 64 bits 10 pJ.

Scaling assumptions (stated, not measured): ADC energy and area grow as 2^bits around the 8-bit
reference (a constant Walden figure of merit) and SAR conversion time linearly with bits; a d-bit
DAC costs 2^d - 1 times a 1-bit one; half of the input bits are ones (`input_activity`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostParameters:
    # array (NeuroSim V1.3)
    read_voltage: float = 0.5              # V
    read_pulse: float = 10e-9              # s per DAC cycle
    cell_area_f2: float = 48.0             # 1T1R: 4F x 12F
    feature_size: float = 40e-9            # m
    columns_per_adc: int = 8               # columns multiplexed onto one ADC
    clock_hz: float = 1e9                  # digital clock
    # converters (ISAAC, 32 nm)
    adc_energy_8bit: float = 2e-3 / 1.28e9      # J per conversion
    adc_area_8bit: float = 0.0012e-6            # m^2
    adc_rate_8bit: float = 1.28e9               # conversions per second
    dac_energy_1bit: float = 4e-3 / 1024 * 100e-9   # J per row per cycle
    dac_area_1bit: float = 0.00017e-6 / 1024        # m^2
    shift_add_area: float = 0.00006e-6               # m^2, one per ADC
    # digital (Horowitz 2014, 45 nm)
    shift_add_energy: float = 0.1e-12           # J per ADC result shifted and added (32-bit add)
    digital_op_energy: float = 0.9e-12          # J per element operation in the digital unit (FP32 add)
    digital_mac_energy: float = 0.23e-12        # J per 8-bit multiply-accumulate (activation x activation)
    buffer_energy_per_byte: float = 10e-12 / 8  # J per byte moved through an SRAM buffer
    digital_lanes: int = 64                     # element operations per digital-unit cycle
    input_activity: float = 0.5                 # fraction of DAC cycles that drive a row

    def adc_energy(self, bits: int) -> float:
        return self.adc_energy_8bit * 2.0 ** (bits - 8)

    def adc_area(self, bits: int) -> float:
        return self.adc_area_8bit * 2.0 ** (bits - 8)

    def adc_time(self, bits: int) -> float:
        return bits / 8 / self.adc_rate_8bit

    def dac_energy(self, bits: int) -> float:
        return self.dac_energy_1bit * (2 ** bits - 1)

    def dac_area(self, bits: int) -> float:
        return self.dac_area_1bit * (2 ** bits - 1)

    @property
    def cell_area(self) -> float:
        return self.cell_area_f2 * self.feature_size ** 2

    def tile_time(self, adc_bits: int) -> float:
        """One DAC cycle of a tile: the read pulse, then each ADC converts its columns in turn."""
        return self.read_pulse + self.columns_per_adc * self.adc_time(adc_bits)
