# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv/bin

.PHONY: setup demo test bench

setup:
	@bash scripts/setup.sh

DEMO_TASK := Which river flows through the city where the Eiffel Tower stands?

demo: setup
	$(VENV)/ltlagent check specs/react.yaml
	$(VENV)/ltlagent run specs/react.yaml --docs specs/docs/demo.jsonl --task "$(DEMO_TASK)"

test: setup
	$(VENV)/python -m pytest -q

bench: setup
	$(VENV)/python bench/bench_compile.py
	$(VENV)/python bench/bench_runtime.py
