"""Device presets: the conductance range and the non-idealities of one resistive-memory cell.

Every number is in microsiemens (µS) or seconds and cites where it comes from. A cell stores one
of 2^cell-bits levels evenly spaced between `g_min` and `g_max`; the simulation (conductance.py)
draws, from the seed, per cell:

* programming noise: additive Gaussian, sigma = poly(g_target / g_max) µS (`prog_coeffs`,
  lowest order first), the form of Nandakumar et al., ICECS 2019 (PCM) also used for ReRAM fits;
* drift: g(t) = g_prog * ((t + t0) / t0) ** -nu, nu per cell ~ N(mu(g), sigma(g)) with
  mu, sigma = clamp(a * ln(g / g_max) + b) (PCM: Joshi et al., Nat. Commun. 11, 2473, 2020);
* read noise: Gaussian, sigma = g(t) * Q * sqrt(ln((t + t_read) / (2 t_read))) with
  Q = min(q_coeff / (g / g_max) ** q_exp, q_max) (PCM 1/f noise, Joshi et al. 2020), or a
  constant fraction of g (`read_relative`, ReRAM random-telegraph noise);
* stuck-at faults: a cell stuck at g_max (on) or at g_min (off) with the given probabilities.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from compiler.errors import PipelineError


@dataclass(frozen=True)
class DeviceModel:
    name: str
    g_max: float                      # µS, the highest programmed level
    g_min: float                      # µS, the lowest level (RESET state)
    prog_coeffs: tuple[float, ...] = ()           # µS, sigma_prog = sum c_i (g / g_max)^i
    drift_mu: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)   # a, b, lo, hi
    drift_sigma: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    drift_t0: float = 20.0            # s, the first read after programming (drift reference)
    read_q: tuple[float, float, float] = (0.0, 0.0, 0.0)   # q_coeff, q_exp, q_max (1/f model)
    read_relative: float = 0.0        # sigma_read / g (constant-fraction model)
    t_read: float = 250e-9            # s, read duration in the 1/f model
    stuck_on: float = 0.0             # probability a cell is stuck at g_max
    stuck_off: float = 0.0            # probability a cell is stuck at g_min
    formed_mean: float = 0.5          # random-weight mode: post-forming conductance, fraction of g_max
    formed_std: float = 0.2           # and its spread (fraction of g_max)
    source: str = ""

    @property
    def noiseless(self) -> bool:
        return (not any(self.prog_coeffs) and not any(self.drift_mu[:2]) and not any(self.drift_sigma[:2])
                and not self.read_q[0] and not self.read_relative and not self.stuck_on and not self.stuck_off)

    def scaled(self, *, programming: float = 1.0, read: float = 1.0, drift: float = 1.0,
               stuck_on: float | None = None, stuck_off: float | None = None) -> "DeviceModel":
        """The preset with its noise terms multiplied (0 turns one off) and fault rates replaced."""
        q_coeff, q_exp, q_max = self.read_q
        return dataclasses.replace(
            self, prog_coeffs=tuple(c * programming for c in self.prog_coeffs),
            drift_mu=(self.drift_mu[0] * drift, self.drift_mu[1] * drift, self.drift_mu[2] * drift,
                      self.drift_mu[3] * drift),
            drift_sigma=(self.drift_sigma[0] * drift, self.drift_sigma[1] * drift, self.drift_sigma[2] * drift,
                         self.drift_sigma[3] * drift),
            read_q=(q_coeff * read, q_exp, q_max * read), read_relative=self.read_relative * read,
            stuck_on=self.stuck_on if stuck_on is None else stuck_on,
            stuck_off=self.stuck_off if stuck_off is None else stuck_off)


PRESETS: dict[str, DeviceModel] = {
    # Exact integer arithmetic: no noise, no drift, no faults (the exactness contract).
    "ideal": DeviceModel("ideal", g_max=25.0, g_min=0.0, source="no non-idealities"),
    # PCM, fitted on measured doped-GST devices: g_max 25 µS; programming-noise polynomial
    # (0.26348, 1.9650, -1.1731) µS (Nandakumar et al., ICECS 2019); drift exponent
    # mu = clamp(-0.0155 ln g + 0.0244, 0.049, 0.1), sigma = clamp(-0.0125 ln g - 0.0059, 0.008, 0.045),
    # t0 = 20 s; 1/f read noise Q = min(0.0088 / g^0.65, 0.2), t_read = 250 ns (Joshi et al.,
    # Nat. Commun. 11, 2473, 2020, supplementary note 1; the same constants drive aihwkit's
    # PCMLikeNoiseModel). The RESET state is taken as 0 µS.
    "pcm": DeviceModel(
        "pcm", g_max=25.0, g_min=0.0, prog_coeffs=(0.26348, 1.9650, -1.1731),
        drift_mu=(-0.0155, 0.0244, 0.049, 0.1), drift_sigma=(-0.0125, -0.0059, 0.008, 0.045), drift_t0=20.0,
        read_q=(0.0088, 0.65, 0.2), t_read=250e-9,
        source="Nandakumar et al. ICECS 2019; Joshi et al. Nat. Commun. 11:2473 (2020)"),
    # ReRAM (HfOx 1T1R, NeuRRAM chip): g_max 40 µS; conductance error one second after
    # program-and-verify, sigma = poly(g / g_max) with (0.348, 16.030, -43.853, 45.393, -16.815) µS
    # (Wan et al., Nature 608, 504, 2022, as fitted in aihwkit's ReRamWan2022NoiseModel); no
    # power-law drift; about 1% short-term read noise (same fit's note); on/off ratio 150
    # (NeuroSim V1.3 default RRAM: 6 kOhm / 900 kOhm). Stuck-at rates default to 0 (verified
    # arrays); Chen et al., IEEE Trans. Comput. 64(1), 2015 measured 1.75% stuck-off and 9.04%
    # stuck-on cells in an unverified array: set stuck-off / stuck-on to study them.
    "reram": DeviceModel(
        "reram", g_max=40.0, g_min=40.0 / 150.0, prog_coeffs=(0.348, 16.030, -43.853, 45.393, -16.815),
        read_relative=0.01, formed_mean=0.45, formed_std=0.2,
        source="Wan et al. Nature 608:504 (2022); NeuroSim V1.3 on/off ratio; Chen et al. IEEE TC 2015"),
}


def get_device(name: str) -> DeviceModel:
    if name not in PRESETS:
        raise PipelineError(f"target 'crossbar': option 'device' names no preset: '{name}'",
                            hint=f"presets: {', '.join(PRESETS)}")
    return PRESETS[name]
