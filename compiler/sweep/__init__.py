"""Design-space sweeps: many configurations of one model, compiled, costed and evaluated, with
Pareto fronts in an HTML report (docs/sweeps.md)."""
from compiler.sweep.runner import SweepResult, run_sweep

__all__ = ["SweepResult", "run_sweep"]
