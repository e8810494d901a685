# Two commands do everything on a fresh machine:
#   make demo   installs nnforge, compiles the bundled trained digits CNN through re-parameterization,
#               pruning and quantization to every target with the unified cost report, then runs a
#               12-point design-space sweep and writes its HTML report (out/sweep/report.html)
#   make test   installs nnforge (with test extras) and runs the test suite
PYTHON ?= python3
STAMP := .install-stamp

.PHONY: install demo test bench docs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

DIGITS := examples/digits_cnn.py
DIGITS_DATA := --eval $(DIGITS):evaluate --calibration-data examples/digits_calibration.npy

demo: install
	$(PYTHON) -m compiler.cli report $(DIGITS):build --pipeline examples/digits_deploy.nnf \
		--targets all --check-equivalence $(DIGITS_DATA) -o out/demo
	$(PYTHON) -m compiler.cli sweep $(DIGITS):build --pipeline examples/digits_sweep.nnf \
		--targets all $(DIGITS_DATA) -o out/sweep

test: install
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) bench/compile_speed.py
	$(PYTHON) bench/onnx_import.py
	$(PYTHON) bench/reparam.py
	$(PYTHON) bench/prune.py --quick
	$(PYTHON) bench/quant.py
	$(PYTHON) bench/capture.py
	$(PYTHON) bench/block_conv.py
	$(PYTHON) bench/simd_sparsity.py --quick
	$(PYTHON) bench/crossbar.py --quick
	$(PYTHON) bench/quant_deploy.py
	$(PYTHON) bench/sweep.py
	$(PYTHON) bench/hls.py --quick
	$(PYTHON) bench/hls_sparsity.py
	$(PYTHON) bench/hls_block_conv.py

docs: install
	$(PYTHON) docs/generate_reference.py
