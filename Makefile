# The two commands of the README: `make demo` and `make test`. Both set everything up first.
VENV := .venv/bin

.PHONY: setup setup-llamacpp demo test bench figures

setup:
	@bash scripts/setup.sh

# The llama.cpp engine (an extra: llama-cpp-python compiles from source, 3-6 minutes on 2 cores).
setup-llamacpp:
	@bash scripts/setup.sh --llamacpp

DEMO_TASK := Which river flows through the city where the Eiffel Tower stands?

demo: setup
	$(VENV)/ltlagent check specs/react.yaml
	$(VENV)/ltlagent run specs/react.yaml --docs specs/docs/demo.jsonl --task "$(DEMO_TASK)"

test: setup-llamacpp
	$(VENV)/python -m pytest -q

bench: setup-llamacpp
	$(VENV)/python bench/bench_compile.py
	$(VENV)/python bench/bench_runtime.py
	$(VENV)/python bench/bench_engines.py

# The evaluation figures (issue 4): needs ../shared/data. Results go to results/ as they finish; run it
# again to resume after an interruption. About an hour on 2 CPU cores.
DATA := ../shared/data
HOTPOT := --data $(DATA)/hotpotqa_distractor_dev70.jsonl --task hotpotqa --limit 20 --out results --resume
GSM8K := --data $(DATA)/gsm8k_test_first1000.jsonl --task gsm8k --limit 50 --out results --resume

figures: setup
	$(VENV)/ltlagent eval specs/react.yaml specs/cot.yaml specs/direct.yaml specs/pass.yaml $(HOTPOT)
	$(VENV)/ltlagent eval specs/react.yaml specs/cot.yaml specs/direct.yaml specs/pass.yaml $(HOTPOT) \
		--unconstrained --plot results/hotpotqa.png
	$(VENV)/ltlagent eval specs/cot.yaml specs/react_calc.yaml $(GSM8K)
	$(VENV)/ltlagent eval specs/cot.yaml specs/react_calc.yaml $(GSM8K) --unconstrained --plot results/gsm8k.png
