# Two commands do everything on a fresh machine:
#   make demo   installs nnforge and compiles the bundled example to every target
#   make test   installs nnforge (with test extras) and runs the test suite
PYTHON ?= python3
STAMP := .install-stamp

.PHONY: install demo test bench docs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PYTHON) -m compiler.cli compile examples/demo_model.py:build \
		--pipeline examples/deploy.nnf --target all -o out/demo \
		--check-equivalence --report out/demo/report.json

test: install
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) bench/compile_speed.py
	$(PYTHON) bench/onnx_import.py
	$(PYTHON) bench/reparam.py
	$(PYTHON) bench/prune.py --quick
	$(PYTHON) bench/quant.py
	$(PYTHON) bench/hls.py --quick

docs: install
	$(PYTHON) docs/generate_reference.py
