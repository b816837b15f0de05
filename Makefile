# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv/bin

.PHONY: setup demo test bench

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/ltlagent check specs/react.yaml
	$(VENV)/ltlagent verify specs/react.yaml
	$(VENV)/ltlagent show specs/react.yaml --format mermaid

test: setup
	$(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python bench/bench_compile.py
