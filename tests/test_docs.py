"""The generated references in docs/ match the registries they are generated from."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pass_and_op_references_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "generate_reference.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
