"""The agent library (specs/*.yaml): every spec loads, compiles, passes every check of ``ltlagent check``
and verifies its few-shot examples; spec-specific semantics are pinned down on hand-written traces."""
from __future__ import annotations

import re

import pytest

import ltlagent
from ltlagent.compiler.analysis import analyse
from ltlagent.compiler.verify import check_example, content_problem
from paths import SPECS
from tiers import examples

SPEC_PATHS = sorted(SPECS.glob("*.yaml"))
LIBRARY = ("chat", "cot", "direct", "fever_cot", "fever_direct", "pass", "pass_list", "react", "react_calc",
           "reflexion", "rewoo")
WRITTEN_WITH_WHY = ("chat", "pass", "pass_list", "react_calc", "reflexion", "rewoo")

_compiled: dict[str, object] = {}


def compiled(name: str):
    if name not in _compiled:
        _compiled[name] = ltlagent.compile(ltlagent.load(SPECS / f"{name}.yaml"))
    return _compiled[name]


def trace(text: str) -> list[str]:
    return text.split()


def accepts(name: str, text: str) -> bool:
    return compiled(name).automaton.accepts(trace(text))


def test_the_library_is_complete():
    assert {p.stem for p in SPEC_PATHS} >= set(LIBRARY)


# --- every spec -------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_spec_loads_compiles_and_every_check_is_ok(path):
    spec = ltlagent.load(path)
    assert spec.name == path.stem
    result = ltlagent.compile(spec)
    findings = analyse(result)
    assert {f.check for f in findings} >= {"satisfiable", "reachable", "limits", "environment"}
    assert [f for f in findings if f.level != "ok"] == []


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_spec_has_instructions_and_verified_examples(path):
    result = compiled(path.stem)
    prompt = result.spec.prompt
    assert prompt.instructions.strip()
    # short prompts: one or two examples, three for the FEVER specs (one per label)
    assert 1 <= len(prompt.examples) <= (3 if path.stem.startswith("fever") else 2)
    for i, example in enumerate(prompt.examples):
        outcome = check_example(result, example.text, example.where, i + 1)
        assert outcome.ok, (path.stem, i + 1, outcome.violation)
        assert result.automaton.accepts(list(outcome.trace))


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_every_rule_holds_on_every_example(path):
    """Cross-check with the reference evaluator: each rule on its own accepts the examples' traces."""
    from ltlagent.compiler.api import rule_automaton

    result = compiled(path.stem)
    traces = [check_example(result, e.text, e.where).trace for e in result.spec.prompt.examples]
    for rule in result.spec.behavior:
        aut = rule_automaton(rule, result.spec.alphabet)
        for t in traces:
            assert aut.accepts(list(t)), (path.stem, rule.text, t)
            if rule.kind == "ltl":
                assert ltlagent.holds(rule.node, list(t)), (path.stem, rule.text, t)


# cot.yaml bounds its thoughts only through limits.max_segments (its rules allow any number of thoughts).
BOUNDED_BY_RULES = [p for p in SPEC_PATHS if p.stem != "cot"]


@pytest.mark.parametrize("path", BOUNDED_BY_RULES, ids=lambda p: p.stem)
def test_every_accepted_run_fits_the_segment_limit(path):
    """The rules bound every loop, so the longest accepted run is finite and within max_segments."""
    result = compiled(path.stem)
    aut = result.automaton
    longest = _longest_accepted(aut)
    assert longest is not None, "the language is infinite: some loop is unbounded"
    assert longest <= result.spec.limits.max_segments


@pytest.mark.parametrize("name", WRITTEN_WITH_WHY)
def test_every_rule_says_why(name):
    assert all(rule.why for rule in compiled(name).spec.behavior)


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_model_contents_are_decodable(path):
    """Every model segment's content constraint translates to the runtime's regex (grammars regular; a
    call segment's arguments, each to a regex or a grammar under its tool's parameters)."""
    from ltlagent.compiler.content import argument_schemas, value_language
    from ltlagent.runtime.constraints import content_regex

    spec = compiled(path.stem).spec
    for segment in spec.segments:
        if segment.by == "model" and segment.content.kind == "call":
            for name in segment.options:
                for _, schema, root in argument_schemas(spec.tool(name)):
                    language = value_language(schema, root)
                    assert language[0] in ("regex", "schema")
                    if language[0] == "regex":
                        re.compile(language[1], re.DOTALL)
        elif segment.by == "model" and segment.content.kind != "choice":
            re.compile(content_regex(segment), re.DOTALL)


def _longest_accepted(aut):
    """Length of the longest accepted trace, or None when there are infinitely many (a reachable cycle;
    the automaton is trimmed, so every state on it can still reach acceptance)."""
    longest, on_path = {}, set()

    def visit(q):
        if q in on_path:
            raise OverflowError
        if q not in longest:
            on_path.add(q)
            best = 0 if q in aut.accepting else -1
            for letter in aut.alphabet:
                t = aut.step(q, letter)
                if t is not None and visit(t) >= 0:
                    best = max(best, longest[t] + 1)
            on_path.discard(q)
            longest[q] = best
        return longest[q]

    try:
        return visit(aut.initial)
    except OverflowError:
        return None


# --- react_calc -------------------------------------------------------------------------------------

CALC_STEP = "thought action.Calculate action_input observation"


def test_react_calc_protocol():
    assert accepts("react_calc", f"question {CALC_STEP} final_thought answer")
    assert accepts("react_calc", f"question {' '.join([CALC_STEP] * 6)} final_thought answer")
    assert not accepts("react_calc", f"question {' '.join([CALC_STEP] * 7)} final_thought answer")
    assert not accepts("react_calc", "question thought final_thought answer")  # answer before any observation
    assert not accepts("react_calc", "question thought answer")
    assert not accepts("react_calc", "question thought action.Calculate observation final_thought answer")
    assert not accepts("react_calc", f"question {CALC_STEP} final_thought answer thought")  # answer is last
    assert not accepts("react_calc", f"question {CALC_STEP} answer")  # the conclusion comes first


def test_react_calc_contents():
    spec = compiled("react_calc").spec
    expression, answer = spec.segment("action_input"), spec.segment("answer")
    for ok in ("42 * 3", "(230 + 14) / 40", "$1,200 × 3", "-5 + 2^3", "25% * 80"):
        assert content_problem(expression, ok) is None, ok
    for bad in ("forty two", "x + 1", "", "sqrt(2)"):
        assert content_problem(expression, bad) is not None, bad
    for ok in ("222", "-3", "1,234.5", "0.25"):
        assert content_problem(answer, ok) is None, ok
    for bad in ("$222", "seven", "7 buses", "1.", ""):
        assert content_problem(answer, bad) is not None, bad


def test_react_calc_tool_is_the_calculator():
    spec = compiled("react_calc").spec
    assert spec.segment("action").options == ("Calculate",)
    assert spec.tool("Calculate").kind == "builtin" and spec.tool("Calculate").target == "calculator"


# --- rewoo ------------------------------------------------------------------------------------------

def test_rewoo_protocol():
    assert accepts("rewoo", "question plan evidence final_thought answer")
    assert not accepts("rewoo", "question plan final_thought answer")  # no answer without evidence
    assert not accepts("rewoo", "question plan evidence plan evidence final_thought answer")  # one plan only
    assert not accepts("rewoo", "question plan evidence answer final_thought")


def test_rewoo_plan_grammar_numbers_the_evidence():
    plan = compiled("rewoo").spec.segment("plan")
    assert plan.end == "\n\n" and plan.content.kind == "grammar"
    good = ("Find X. #E1 = Search[X]\n"
            "Then: Find when it opened. #E2 = Lookup[opened]\n"
            "Then: Compare both. #E3 = Search[Y #E1]")
    assert content_problem(plan, "Find X. #E1 = Search[X]") is None
    assert content_problem(plan, good) is None
    five = "\n".join(["Find a. #E1 = Search[a]"] + [f"Then: Find b. #E{n} = Lookup[b]" for n in range(2, 6)])
    assert content_problem(plan, five) is None
    six = five + "\nThen: Find c. #E6 = Search[c]"
    bad = [
        "Find X. #E2 = Search[X]",                             # must start at #E1
        "Find X. #E1 = Search[X]\nThen: Y. #E3 = Search[Y]",   # numbered in order
        "Find X. #E1 = Google[X]",                             # only Search and Lookup
        "Find X. #E1 = Search[]",                              # an input is required
        "Find X. #E1 = Search[X]\nPlan: Y. #E2 = Search[Y]",   # further steps start with "Then: "
        "#E1 = Search[X]",                                     # every step says why
        "Find X. #E1 = Search[X]\nThen: Use #E1. #E2 = Lookup[Y]",  # the why has no #, so no false #E
        six,                                                   # at most five steps
    ]
    for text in bad:
        assert content_problem(plan, text) is not None, text
    from ltlagent.runtime.constraints import content_regex

    regex = re.compile(content_regex(plan))
    assert regex.fullmatch(" " + good + "\n\n")
    assert not regex.fullmatch(" " + good + "\n")  # the plan ends at a blank line


@pytest.mark.parametrize("path", SPEC_PATHS, ids=lambda p: p.stem)
def test_grammar_contents_agree_between_runtime_and_verify(path):
    """What the runtime may write under a grammar (its regex translation) must parse with the grammar
    itself, which is what verify and the run's verdict check."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from ltlagent.runtime.constraints import grammar_regex

    for segment in compiled(path.stem).spec.segments:
        if segment.content.kind != "grammar":
            continue

        @settings(max_examples=examples(150), deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.from_regex(re.compile(grammar_regex(segment.content.value)), fullmatch=True))
        def agrees(text):
            assert content_problem(segment, text) is None, text

        agrees()


def test_rewoo_evidence_comes_from_the_solver_given_the_plan():
    spec = compiled("rewoo").spec
    call = spec.segment("evidence").tool
    assert (call.name, call.input_from) == ("rewoo_solver", "plan")
    assert spec.tool("rewoo_solver").kind == "function"
    assert spec.tool("rewoo_solver").target == "ltlagent.runtime.tools.rewoo:solve"


# --- pass / pass_list -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,env", [("pass", "summary"), ("pass_list", "results")])
def test_pass_protocol(name, env):
    s, l_, ai = "action.Search", "action.Lookup", "action_input"
    assert accepts(name, f"question plan {s} {ai} {env} final_thought answer")
    assert accepts(name, f"question plan {s} {ai} {s} {ai} {s} {ai} {env} final_thought answer")
    assert accepts(name, f"question plan {s} {ai} {env} plan {l_} {ai} {l_} {ai} {env} "
                         f"plan {s} {ai} {env} final_thought answer")
    # at most three calls per step and three steps
    assert not accepts(name, f"question plan {' '.join([f'{s} {ai}'] * 4)} {env} final_thought answer")
    assert not accepts(name, f"question {' '.join([f'plan {s} {ai} {env}'] * 4)} final_thought answer")
    # a plan step acts at least once; no answer before the first step's results
    assert not accepts(name, f"question plan {env} final_thought answer")
    assert not accepts(name, "question plan final_thought answer")
    assert not accepts(name, f"question plan {s} {ai} final_thought answer")
    # no Lookup in the first step (no page open); no Search and Lookup in the same step
    assert not accepts(name, f"question plan {l_} {ai} {env} final_thought answer")
    assert not accepts(name, f"question plan {s} {ai} {env} plan {s} {ai} {l_} {ai} {env} final_thought answer")
    assert not accepts(name, f"question plan {s} {ai} {env} plan {l_} {ai} {s} {ai} {env} final_thought answer")
    # the answer is last
    assert not accepts(name, f"question plan {s} {ai} {env} final_thought answer plan")


@pytest.mark.parametrize("name,env,target", [("pass", "summary", "ltlagent.runtime.tools.passes:summarize"),
                                             ("pass_list", "results", "ltlagent.runtime.tools.passes:list_results")])
def test_pass_env_tool(name, env, target):
    spec = compiled(name).spec
    segment = spec.segment(env)
    assert segment.by == "env" and segment.tool.name is not None and segment.tool.input_from == "plan"
    tool = spec.tool(segment.tool.name)
    assert (tool.kind, tool.target) == ("function", target)
    assert {t.name for t in spec.tools} >= set(spec.segment("action").options)


# --- reflexion --------------------------------------------------------------------------------------

STEP = "thought action.Search action_input observation"
ATTEMPT = f"{STEP} final_thought proposed_answer"
FAILED = f"{ATTEMPT} evaluation.fail reflection"


def test_reflexion_pass_then_answer():
    assert accepts("reflexion", f"question {ATTEMPT} evaluation.pass answer")
    assert accepts("reflexion", f"question {FAILED} {ATTEMPT} evaluation.pass answer")
    assert accepts("reflexion", f"question {FAILED} {FAILED} {ATTEMPT} evaluation.pass answer")
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.pass")  # the answer must follow
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.pass {ATTEMPT} evaluation.pass answer")


def test_reflexion_reflection_only_right_after_a_failure():
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.pass reflection answer")
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.pass reflection {ATTEMPT} evaluation.pass answer")
    assert not accepts("reflexion", f"question {STEP} reflection final_thought proposed_answer evaluation.pass answer")
    assert not accepts("reflexion", f"question reflection {ATTEMPT} evaluation.pass answer")
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.fail {ATTEMPT} evaluation.pass answer")


def test_reflexion_bounds_the_attempts():
    assert not accepts("reflexion", f"question {FAILED} {FAILED} {FAILED} {ATTEMPT} evaluation.pass answer")
    assert not accepts("reflexion", f"question {' '.join([STEP] * 4)} final_thought proposed_answer "
                                    "evaluation.pass answer")
    assert accepts("reflexion", f"question {' '.join([STEP] * 3)} final_thought proposed_answer "
                                "evaluation.pass answer")


def test_reflexion_answers_only_after_a_pass_or_three_failures():
    assert accepts("reflexion", f"question {FAILED} {FAILED} {FAILED} answer")  # retries exhausted
    assert not accepts("reflexion", f"question {FAILED} answer")
    assert not accepts("reflexion", f"question {FAILED} {FAILED} answer")
    assert not accepts("reflexion", f"question {ATTEMPT} answer")  # no answer without an evaluation
    assert not accepts("reflexion", f"question {ATTEMPT} evaluation.fail answer")  # reflect first
    assert not accepts("reflexion", f"question {FAILED} {FAILED} {FAILED} {ATTEMPT} evaluation.fail reflection answer")


def test_reflexion_no_lookup_before_search_and_no_proposal_before_an_observation():
    lookup = "thought action.Lookup action_input observation"
    assert not accepts("reflexion", f"question {lookup} final_thought proposed_answer evaluation.pass answer")
    assert accepts("reflexion", f"question {STEP} {lookup} final_thought proposed_answer evaluation.pass answer")
    assert accepts("reflexion", f"question {FAILED} {lookup} final_thought proposed_answer evaluation.pass answer")
    assert not accepts("reflexion", "question thought final_thought proposed_answer evaluation.pass answer")


def test_reflexion_environment_check_really_plays_the_evaluator():
    result = compiled("reflexion")
    env = next(f for f in analyse(result) if f.check == "environment")
    assert env.level == "ok" and "evaluation" in env.message
    assert result.spec.segment("evaluation").by == "env"
    assert result.spec.segment("evaluation").options == ("pass", "fail")
    text = (SPECS / "reflexion.yaml").read_text()
    # Without the way out after the third failure, an evaluator that always fails spoils every run ...
    stubborn = text.replace("(evaluation.pass answer | evaluation.fail reflection answer)", "evaluation.pass answer")
    assert stubborn != text
    findings = {f.check: f for f in analyse(ltlagent.compile(ltlagent.load(stubborn)))}
    assert findings["satisfiable"].level == findings["limits"].level == "ok"  # cooperatively fine
    assert findings["environment"].level == "error"
    assert "@evaluation.fail" in findings["environment"].detail[0]
    # ... and so does a segment limit that fits a passing run but not three failed attempts.
    tight = text.replace("max_segments: 50", "max_segments: 20")
    findings = {f.check: f for f in analyse(ltlagent.compile(ltlagent.load(tight)))}
    assert findings["limits"].level == "ok" and findings["environment"].level == "error"


def test_reflexion_evaluator_grades_the_proposed_answer():
    spec = compiled("reflexion").spec
    call = spec.segment("evaluation").tool
    assert (call.name, call.input_from) == ("evaluate", "proposed_answer")
    assert spec.tool("evaluate").target == "ltlagent.runtime.tools.reflexion:evaluate"


# --- chat -------------------------------------------------------------------------------------------

TOOL = "action action_input observation thought"


def _tool(option: str) -> str:
    return f"action.{option} action_input observation thought"


def test_chat_turns():
    assert accepts("chat", "user thought response")
    assert accepts("chat", f"user thought {_tool('Search')} response user thought {_tool('Calculate')} response")
    four = " ".join(["user thought response"] * 4)
    assert accepts("chat", four)
    assert not accepts("chat", four + " user thought response")  # at most four turns
    many_tools = " ".join([_tool("Calculate")] * 4)
    assert not accepts("chat", f"user thought {many_tools} response")  # at most three calls per turn


def test_chat_ends_only_after_a_response():
    assert not accepts("chat", "user thought response user")
    assert not accepts("chat", "user thought response user thought")
    assert not accepts("chat", f"user thought action.Search action_input observation")
    assert not accepts("chat", "thought response")  # the user opens
    assert not accepts("chat", "user response")  # a thought comes first
    assert not accepts("chat", "user thought response thought response")  # after a response, the user


def test_chat_tool_discipline():
    assert not accepts("chat", "user thought action.Search observation thought response")
    assert not accepts("chat", "user thought action.Search action_input thought response")
    assert not accepts("chat", "user thought action.Search action_input observation response")  # read it first
    assert not accepts("chat", f"user thought {_tool('Lookup')} response")  # no page open yet
    assert accepts("chat", f"user thought {_tool('Search')} response user thought {_tool('Lookup')} response")


def test_chat_user_turns_are_read_from_the_user():
    spec = compiled("chat").spec
    assert spec.segment("user").by == "env" and spec.segment("user").input == "user"
    assert set(spec.segment("action").options) == {"Search", "Lookup", "Calculate"}
