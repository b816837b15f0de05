# The commands of the README: `make demo`, `make test`, `make test-fast`. All set everything up first.
VENV := .venv/bin

.PHONY: setup setup-llamacpp setup-vllm demo test test-fast bench figures figures-serving figures-chat figures-retail verify-reference

setup:
	@bash scripts/setup.sh

# The llama.cpp engine (an extra: llama-cpp-python compiles from source, 3-6 minutes on 2 cores).
setup-llamacpp:
	@bash scripts/setup.sh --llamacpp

# The vLLM CPU server for the serving engines, in its own venv (.vllm-venv/, 2-6 minutes, 3.5 GB).
setup-vllm:
	@bash scripts/vllm_server.sh setup

DEMO_TASK := Which river flows through the city where the Eiffel Tower stands?

demo: setup
	$(VENV)/ltlagent check specs/react.yaml
	$(VENV)/ltlagent run specs/react.yaml --docs specs/docs/demo.jsonl --task "$(DEMO_TASK)"

test: setup-llamacpp setup-vllm
	$(VENV)/python -m pytest -q

# The fast tier: no wheel builds or external tools (slow), no embedded-model runs (model), a tenth of the
# property-test examples and 300 fuzzed cases per input kind. `make test` (and CI) runs everything.
test-fast: setup
	LTLAGENT_TEST_FAST=1 $(VENV)/python -m pytest -q -m "not slow and not model"

bench: setup-llamacpp setup-vllm
	@$(VENV)/python -c "import outlines" 2>/dev/null || $(VENV)/python -m pip install -q -e '.[test,bench]'
	$(VENV)/python bench/bench_compile.py
	$(VENV)/python bench/bench_runtime.py
	$(VENV)/python bench/bench_engines.py
	$(VENV)/python bench/bench_serving.py

# The reference framework's own few-shot prompts, each folder verified against its agent's s-expression
# spec (granite_react uses react's). 76 of the 86 examples are well formed; the 10 that break their
# spec are listed (tests/test_reference_prompts.py holds the verdicts). Always exits 0.
REFERENCE := ../shared/reference/ibm-llm-agent-framework
verify-reference: setup
	@for dir in $(REFERENCE)/prompts/*/; do agent=$$(basename $$dir); \
	  NO_COLOR=1 $(VENV)/ltlagent verify $(REFERENCE)/specs/$${agent#granite_}.txt $$dir | grep -v '^ *ok '; \
	done; true

# The evaluation figures (issue 4; FEVER added with Engines II): needs ../shared/data. Results go to
# results/ as they finish; run it again to resume after an interruption. Over an hour on 2 CPU cores.
# Completion prompts, as the README's tables were measured; `make figures PROMPT_FORMAT=chat OUT=results/chat`
# for the default format.
DATA := ../shared/data
PROMPT_FORMAT ?= completion
OUT ?= results
EVAL := --out $(OUT) --resume --prompt-format $(PROMPT_FORMAT)
HOTPOT := --data $(DATA)/hotpotqa_distractor_dev70.jsonl --task hotpotqa --limit 20 $(EVAL)
GSM8K := --data $(DATA)/gsm8k_test_first1000.jsonl --task gsm8k --limit 50 $(EVAL)
FEVER := --data $(DATA)/fever_dev_first1000.jsonl --task fever --limit 100 $(EVAL)

figures: setup
	$(VENV)/ltlagent eval specs/react.yaml specs/cot.yaml specs/direct.yaml specs/pass.yaml $(HOTPOT)
	$(VENV)/ltlagent eval specs/react.yaml specs/cot.yaml specs/direct.yaml specs/pass.yaml $(HOTPOT) \
		--unconstrained --plot $(OUT)/hotpotqa.png
	$(VENV)/ltlagent eval specs/cot.yaml specs/react_calc.yaml $(GSM8K)
	$(VENV)/ltlagent eval specs/cot.yaml specs/react_calc.yaml $(GSM8K) --unconstrained --plot $(OUT)/gsm8k.png
	$(VENV)/ltlagent eval specs/fever_cot.yaml specs/fever_direct.yaml $(FEVER)
	$(VENV)/ltlagent eval specs/fever_cot.yaml specs/fever_direct.yaml $(FEVER) --unconstrained --plot $(OUT)/fever.png

# The same kind of table through a vLLM server, 8 episodes at once (bench/figures_serving.sh starts and stops
# the server). Results in results/vllm/, resumable.
figures-serving: setup setup-vllm
	bash bench/figures_serving.sh

# Prompt formats, measured (completion vs the model's chat format, constrained and unconstrained, on the
# llama.cpp engine): results in results/prompt-format/<format>/, resumable, one Markdown table at the end.
# `python bench/bench_prompt_format.py --quick` is the smoke run (2 items per configuration).
figures-chat: setup-llamacpp
	$(VENV)/python bench/bench_prompt_format.py --resume

# The retail figures (issue 11): the 80 tau-bench retail tasks, constrained / unconstrained x benign /
# adversarial users, on llama.cpp (1 thread: see bench/figures_retail.py), in steps of 20 tasks, resumable;
# one Markdown table beside Agent-C's published rows. RETAIL_OUT=DIR to put the results elsewhere.
RETAIL_OUT ?= results/retail
figures-retail: setup-llamacpp
	$(VENV)/python bench/figures_retail.py --out $(RETAIL_OUT) --parallel 2
