"""The tools layer: the BM25 document store and its ReAct browser, the safe calculator, the ToolBox."""
from __future__ import annotations

import builtins
import json
import sys
import textwrap
import time
from importlib.metadata import EntryPoint

import pytest

import ltlagent
from ltlagent.runtime.tools import (Browser, CalculatorError, DocStore, DocStoreError, Page, ToolBox, ToolError,
                                    ToolResult, evaluate, one_line)
from ltlagent.runtime.tools import calculator, registry
from ltlagent.runtime.tools.docstore import split_sentences, summary

from paths import REPO, SHARED

DEMO = REPO / "specs" / "docs" / "demo.jsonl"
HOTPOT = SHARED / "data" / "hotpotqa_distractor_dev70.jsonl"
needs_hotpot = pytest.mark.skipif(not HOTPOT.is_file(), reason=f"shared HotpotQA data not found at {HOTPOT}")


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo():
    return DocStore.from_jsonl(DEMO)


# ---------------------------------------------------------------------------------------------------
# DocStore

def test_demo_store_pages_are_short_and_distinct(demo):
    lines = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines()]
    assert 12 <= len(demo) == len(lines) <= 20
    expected = {"Eiffel Tower", "Paris", "Seine", "Louvre", "Lyon", "Rhône", "Big Ben", "London", "Thames"}
    assert expected <= set(demo.titles)
    assert all(3 <= len(page.sentences) <= 8 for page in demo)
    assert all(set(line) == {"title", "sentences"} for line in lines)


def test_demo_two_hop_question(demo):
    """Which river flows through the city where the Eiffel Tower stands?"""
    browser = Browser(demo)
    first = browser.search("Eiffel Tower")
    assert first.startswith("The Eiffel Tower is a wrought-iron lattice tower") and "Paris" in first
    second = browser.search("  paris ")
    assert "on the river Seine" in second and browser.page.title == "Paris"
    assert browser.lookup("Seine") == "(Result 1 / 2) The city lies in the north of the country, on the river Seine."
    assert browser.lookup("seine").startswith("(Result 2 / 2) Its historic centre")
    assert browser.lookup("Seine") == "No more results."
    assert browser.lookup("Louvre").startswith("(Result 1 / 1) Its landmarks include")  # a new keyword restarts
    assert browser.search("Seine").startswith("The Seine is a river in northern France")


def test_search_near_miss_lists_similar_titles_in_react_format(demo):
    browser = Browser(demo)
    text = browser.search("The Eiffel Tower")
    assert text.startswith("Could not find The Eiffel Tower. Similar: ['Eiffel Tower', ")
    similar = eval(text.split("Similar: ", 1)[1].rstrip("."))  # a Python list literal, as in ReAct
    assert len(similar) == 5 and similar[0] == "Eiffel Tower"
    assert browser.page is None
    assert browser.search("zzqx qqq") == "Could not find zzqx qqq. Similar: []."


def test_failed_search_keeps_the_current_page(demo):
    browser = Browser(demo)
    browser.search("London")
    assert browser.lookup("london").startswith("(Result 1 / 3) London is the capital")
    assert browser.search("Londres").startswith("Could not find Londres.")
    assert browser.page.title == "London"
    assert browser.lookup("London").startswith("(Result 2 / 3) Its landmarks include")


def test_lookup_and_search_edge_cases(demo):
    browser = Browser(demo)
    assert browser.lookup("river") == "No page is open: use Search first."
    assert browser.search("   ") == "Search needs a page title."
    browser.search('"Big Ben"')  # surrounding quotes are tolerated
    assert browser.page.title == "Big Ben"
    assert browser.lookup("") == "Lookup needs a keyword."
    assert browser.lookup("volcano") == "No more results."
    browser.lookup("tower")
    browser.search("Big Ben")  # a successful search resets the lookup state
    assert browser.lookup("tower").startswith("(Result 1 / ")


def test_bm25_ranks_the_obvious_page_first(demo):
    cases = {"bell clock Westminster": "Big Ben", "leaning bell tower Pisa Cathedral": "Leaning Tower of Pisa",
             "Rhone glacier Lake Geneva": "Rhône", "Galileo birthplace": "Pisa", "Mona Lisa museum": "Louvre",
             "Edo eastern capital": "Tokyo", "Medici Renaissance Uffizi": "Florence"}
    for query, title in cases.items():
        ranked = demo.rank(query)
        assert ranked[0][0] == title, (query, ranked)
        assert all(a[1] >= b[1] > 0 for a, b in zip(ranked, ranked[1:]))
    assert demo.rank("qqqq zzzz") == []
    assert len(demo.rank("the", k=3)) == 3


def test_from_jsonl_accepts_sentences_text_and_context(tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", [
        {"title": "  Alpha  Page ", "sentences": [" One. ", "", "Two."]},
        {"title": "Beta", "text": "Dr. Smith moved to St. Louis in 1990. He liked it! Then I. M. Pei visited."},
        {"_id": "x", "context": [["Gamma", ["G one.", " G two."]], ["alpha page", ["A duplicate, dropped."]]]},
    ])
    (tmp_path / "docs.jsonl").write_text(path.read_text() + "\n   \n", encoding="utf-8")  # blank lines skipped
    store = DocStore.from_jsonl(path)
    assert store.titles == ("Alpha Page", "Beta", "Gamma")
    assert store.get("ALPHA page").sentences == ("One.", "Two.")
    assert store.get("Beta").sentences == ("Dr. Smith moved to St. Louis in 1990.", "He liked it!",
                                           "Then I. M. Pei visited.")
    assert store.get("gamma") == Page("Gamma", ("G one.", "G two."))
    assert "beta" in store and "Delta" not in store


def test_split_sentences():
    assert split_sentences("It rained. \"Why?\" she asked. 3 cats came.") == ("It rained.", "\"Why?\" she asked.",
                                                                              "3 cats came.")
    assert split_sentences("See Fig. 2 and e.g. this. Done") == ("See Fig. 2 and e.g. this.", "Done")
    assert split_sentences("   ") == ()


@pytest.mark.parametrize("content, message", [
    ('{"title": "A", "sentences": ["x"]}\nnot json\n', ":2: not JSON"),
    ('{"question": "no title"}\n', ":1: a line needs 'title'"),
    ('[1, 2]\n', ":1: expected a JSON object"),
    ('{"title": "A"}\n', ":1: page 'A' needs 'sentences'"),
    ('{"title": "A", "sentences": "x"}\n', ":1: 'sentences' must be a list of strings"),
    ('{"title": ""}\n', ":1: 'title' must be a non-empty string"),
    ('{"context": [["A", "not a list"]]}\n', ":1: context entry 0 is not a [title, [sentence, ...]] pair"),
    ('{"context": {"A": []}}\n', ":1: 'context' must be a list"),
    ('\n\n', ": no pages"),
])
def test_bad_document_files_raise_located_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DocStoreError) as info:
        DocStore.from_jsonl(path)
    assert str(info.value).startswith(f"{path}{message}")
    assert isinstance(info.value, ValueError)


def test_unreadable_document_files(tmp_path):
    with pytest.raises(DocStoreError, match="cannot read"):
        DocStore.from_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"title": "caf\xe9", "sentences": []}\n')
    with pytest.raises(DocStoreError, match="cannot read"):
        DocStore.from_jsonl(tmp_path / "latin1.jsonl")


def test_from_pages_keeps_the_first_of_equal_titles():
    store = DocStore.from_pages([Page("A", ("first.",)), Page(" a ", ("second.",)), Page("B", ("b.",))])
    assert len(store) == 2 and store.get("a").sentences == ("first.",)
    assert DocStore.from_pages([]).rank("anything") == []
    assert Browser(DocStore()).search("x") == "Could not find x. Similar: []."


def test_summary_caps_sentences_and_characters():
    page = Page("Long", tuple(f"Sentence {i} " + "word " * 20 + "end." for i in range(10)))
    text = summary(page)
    assert len(text) <= 600 and text.endswith("end.") and text.count("Sentence") <= 5
    assert summary(Page("Short", tuple(f"S{i}." for i in range(9)))) == "S0. S1. S2. S3. S4."
    giant = summary(Page("Giant", ("word " * 300 + "end.",)))
    assert len(giant) <= 600 and giant.endswith("word…")
    assert summary(Page("Empty", ())) == "The page Empty is empty."


def test_titles_with_quotes_use_python_list_syntax():
    store = DocStore.from_pages([Page("Arthur's Magazine", ("An American literary periodical.",))])
    expected = 'Could not find Arthur Magazine. Similar: ["Arthur\'s Magazine"].'
    assert Browser(store).search("Arthur Magazine") == expected


@needs_hotpot
def test_hotpotqa_file_loads_as_one_store():
    items = [json.loads(line) for line in HOTPOT.read_text(encoding="utf-8").splitlines()]
    store = DocStore.from_jsonl(HOTPOT)
    titles = {title for item in items for title, _ in item["context"]}
    assert len(items) == 70 and len(store) == len(titles) == 700
    browser = Browser(store)
    assert browser.search("VIVA Media").startswith('VIVA Media GmbH (until 2004 "VIVA Media AG")')
    assert "'VIVA Media'" in browser.search("Viva Media AG")
    for title in ("Constantin Medien", "Blic", "Jonny Craig"):
        assert store.rank(title)[0][0] == title
    assert [title for title, _ in store.rank("Pete Doherty", 2)] == ["Stalking Pete Doherty", "Pete Doherty"]


@needs_hotpot
def test_per_item_store_from_context():
    item = json.loads(HOTPOT.read_text(encoding="utf-8").splitlines()[1])
    store = DocStore.from_context(item["context"])
    assert len(store) == 10 and set(store.titles) == {title for title, _ in item["context"]}
    browser = Browser(store)
    for title, index in item["supporting_facts"]:
        assert browser.search(title)
        assert browser.page.title == title and browser.page.sentences[index]
    with pytest.raises(DocStoreError):
        DocStore.from_context([["only a title"]])


# ---------------------------------------------------------------------------------------------------
# Calculator

@pytest.mark.parametrize("expression, value", [
    ("1 + 2 * 3", "7"), ("(1 + 2) * 3", "9"), ("2 ** 3 ** 2", "512"), ("-2 ** 2", "-4"), ("(-2) ** 2", "4"),
    ("7 / 2", "3.5"), ("6 / 3", "2"), ("7 // 2", "3"), ("-7 // 2", "-4"), ("7 % 3", "1"), ("+5 - -5", "10"),
    ("0.1 + 0.2", "0.3"), ("1 / 3", "0.3333333333"), ("2 / 3", "0.6666666667"), ("1e20 * 1.5", "1.5e+20"),
    ("2 ** 0.5", "1.414213562"), ("2 ** -2", "0.25"), ("10 ** 15", "1000000000000000"), ("1.5e3", "1500"),
    ("abs(-4.5)", "4.5"), ("round(2.567, 2)", "2.57"), ("round(2.5)", "2"), ("min(3, 1, 2)", "1"),
    ("max(1, 2, 3)", "3"), ("sqrt(16)", "4"), ("floor(2.7)", "2"), ("ceil(2.1)", "3"), ("floor(-2.5)", "-3"),
    ("sqrt(2) * sqrt(2)", "2"), ("pi", "3.141592654"), ("-0.0", "0"),
    ("1,000 + 1", "1001"), ("$1,234.50 * 2", "2469"), ("(1,000 + 2,000) / 3", "1000"), ("12,345.5", "12345.5"),
    ("min(100,200)", "100"), ("max(1,000)", "1"), ("50% * 8", "4"), ("10 % 3", "1"), ("25%", "0.25"),
    ("2^10", "1024"), ("3 × 4 ÷ 2 − 1", "5"), ("3 + 4 =", "7"), (" 42 ", "42"),
])
def test_calculator_values(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression, message", [
    ("1 / 0", "division by zero"), ("1 // 0", "division by zero"), ("5 % 0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("a + 1", "unsupported name 'a'"), ("__import__('os')", "unsupported function '__import__'"),
    ("__import__('os').system('echo hi')", "attribute access"), ("(1).real", "attribute access"),
    ("abs.__class__", "attribute access"), ("[1, 2][0]", "subscript"), ("(1, 2)[0]", "subscript"),
    ("lambda: 1", "lambda"), ("1 < 2", "comparison"), ("1 and 2", "boolean operator"), ("~1", "this operator"),
    ("1 << 2", "this operator"), ("'a' * 3", "unsupported constant 'a'"), ("True + 1", "unsupported constant True"),
    ("1j", "unsupported constant 1j"), ("1 if 1 else 2", "IfExp"), ("[x for x in (1,)]", "ListComp"),
    ("f'{1}'", "JoinedStr"), ("1, 2", "tuple"), ("x := 1", "invalid expression"), ("import os", "invalid expression"),
    ("1 +", "invalid expression"), ("", "empty expression"), ("=", "empty expression"),
    ("max()", "at least 1"), ("sqrt(1, 2)", "takes 1 argument"), ("round(1, 2, 3)", "1 to 2"),
    ("round(1.5, 1.5)", "must be an integer"), ("max(*[1])", "plain positional"),
    ("round(1.5, ndigits=1)", "plain positional"),
    ("sqrt(-1)", "math domain error in sqrt"), ("(-8) ** 0.5", "complex result"),
    ("2 ** 10 ** 10", "exponent 10000000000 too large"), ("2 ** -2000", "exponent -2000 too large"),
    ("9 ** 999", "result too large"), ("10 ** 100 * 10", "result too large"), ("1e308 * 10", "result too large"),
    ("10.0 ** 400", "result too large"), ("9" * 200, "result too large"), ("1" + "+1" * 600, "too long"),
    ("-" * 500 + "1", "too deeply nested"), ("(" * 300 + "1" + ")" * 300, "invalid expression"),
    ("1+\x002", "invalid expression"),
])
def test_calculator_errors(expression, message):
    started = time.monotonic()
    with pytest.raises(CalculatorError, match=message.replace("(", r"\(").replace("*", r"\*")):
        evaluate(expression)
    assert time.monotonic() - started < 0.5


def test_calculator_never_evaluates_code(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    for attack in (f"open({str(marker)!r}, 'w')", f"__import__('pathlib').Path({str(marker)!r}).touch()",
                   "().__class__.__bases__[0].__subclasses__()", "exec('1')", "eval('1')", "globals()"):
        with pytest.raises(CalculatorError):
            evaluate(attack)
    assert not marker.exists()

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec used")
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert evaluate("max(2, 3) ** 2 + sqrt(9)") == "12"
    assert CalculatorError.__mro__[1] is ValueError
    with pytest.raises(CalculatorError, match="expected text"):
        evaluate(12)


def test_calculator_limits_are_documented_constants():
    assert calculator.MAX_LENGTH == 1000 and calculator.MAX_EXPONENT == 1000
    assert evaluate("1" * 100) == "1" * 100
    assert evaluate("2 ** 332") == str(2 ** 332)
    assert evaluate("1 " + "+ 1 " * 249) == "250"


# ---------------------------------------------------------------------------------------------------
# ToolBox

HELPERS = textwrap.dedent('''\
    import time

    def boom(text):
        raise ValueError("kaput\\nsecond line " + text)

    def sleepy(text):
        time.sleep(float(text))
        return "slept " + text

    def shout(text):
        return text.upper()

    def lines(text):
        return "a\\nb\\r\\n  c\\n"

    def huge(text):
        return "x" * 5000

    def number(text):
        return 42

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no str")

    def unprintable(text):
        return Unprintable()

    NOT_CALLABLE = 3
''')

SPEC = textwrap.dedent('''\
    name: tool-test
    segments:
      question: {tag: "Question:", by: env, input: task}
      action: {tag: "Action:", choice: [Boom, Sleepy, Slow, Shout, Lines, Huge, Number, Unprintable, Calc, Ep, search]}
      action_input: {tag: "Action Input:", regex: '[^\\n]+'}
      observation: {tag: "Observation:", by: env, tool: {name_from: action, input_from: action_input}}
      final: {tag: "Final:", by: env, tool: {name: finish, input_from: action_input}}
    tools:
      Boom: {function: "ltl_tool_helpers:boom"}
      Sleepy: {function: "ltl_tool_helpers:sleepy", timeout: 0.2}
      Slow: {function: "ltl_tool_helpers:sleepy", timeout: 2}
      Shout: {function: "ltl_tool_helpers:shout"}
      Lines: {function: "ltl_tool_helpers:lines"}
      Huge: {function: "ltl_tool_helpers:huge"}
      Number: {function: "ltl_tool_helpers:number"}
      Unprintable: {function: "ltl_tool_helpers:unprintable"}
      Calc: {builtin: calculator, timeout: 5}
      Ep: {entry_point: shouter, timeout: 3}
    behavior:
      - pattern: question (action action_input observation)+ final
''')


class FakeEntryPoints:
    """Stands in for importlib.metadata.entry_points inside the registry module."""

    def __init__(self, *points):
        self.points, self.groups = points, []

    def __call__(self, group):
        self.groups.append(group)
        return [p for p in self.points if p.group == group]


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    (tmp_path / "ltl_tool_helpers.py").write_text(HELPERS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ltl_tool_helpers", raising=False)
    fake = FakeEntryPoints(EntryPoint("shouter", "ltl_tool_helpers:shout", "ltlagent.tools"),
                           EntryPoint("other", "ltl_tool_helpers:shout", "something.else"))
    monkeypatch.setattr(registry, "entry_points", fake)
    return fake


@pytest.fixture
def box(helpers, demo):
    return ToolBox.for_spec(ltlagent.load(SPEC), docs=demo)


def test_for_spec_builds_declared_bound_and_choice_tools(box, helpers):
    assert box.names() == ("Boom", "Sleepy", "Slow", "Shout", "Lines", "Huge", "Number", "Unprintable", "Calc", "Ep",
                         "search", "finish")
    assert box.entry("Sleepy").timeout == 0.2 and box.entry("search").timeout == 10
    assert box.entry("Ep").origin == "entry point shouter" and helpers.groups == ["ltlagent.tools"]
    assert "Calc" in box and "Nope" not in box


def test_successful_calls(box):
    result = box.call("Shout", "hello")
    assert result == ToolResult("HELLO", True, result.seconds) and 0 <= result.seconds < 1
    assert box.call("Ep", "entry").text == "ENTRY"
    assert box.call("Number", "").text == "42"
    assert box.call("Calc", "2 * (3 + 4)").text == "14"
    assert box.call("search", "Thames").text.startswith("The River Thames flows through southern England")
    done = box.call("finish", "  Seine ")
    assert done.ok and done.finished and done.text == "Seine"
    assert not box.call("Shout", "x").finished


def test_observations_are_one_line_and_capped(box):
    assert box.call("Lines", "").text == "a b c"
    huge = box.call("Huge", "").text
    assert len(huge) == 2000 and huge.endswith("x…")
    assert one_line("a\u2028b\n\n\nc", 3) == "a …"
    assert one_line("short") == "short"


def test_failing_tool_gives_an_observation(box):
    result = box.call("Boom", "now")
    assert not result.ok and result.text == "Tool Boom failed: ValueError: kaput second line now"
    assert result.error == "ValueError: kaput\nsecond line now"
    bad = box.call("Unprintable", "")
    assert not bad.ok and bad.text == "Tool Unprintable failed: RuntimeError: no str"
    calc = box.call("Calc", "1/0")
    assert not calc.ok and calc.text == "Tool Calc failed: CalculatorError: division by zero"


def test_timeout_gives_an_observation_quickly(box):
    started = time.monotonic()
    result = box.call("Sleepy", "1.5")
    assert time.monotonic() - started < 1.0
    assert not result.ok and result.text == "Tool Sleepy timed out after 0.2 s" and result.error == "timeout"
    assert 0.2 <= result.seconds < 1.0
    assert box.call("Slow", "0.05").text == "slept 0.05"  # within its own 2 s timeout


def test_unknown_tool_gives_an_observation(box):
    result = box.call("Nope", "x")
    assert not result.ok and result.text.startswith("Unknown tool 'Nope'. Available tools: Boom, Sleepy,")
    assert result.error == "unknown tool 'Nope'"


def test_call_many_runs_concurrently_in_call_order(box):
    started = time.monotonic()
    results = box.call_many([("Slow", "0.3"), ("Nope", ""), ("Slow", "0.3"), ("Shout", "a"), ("Sleepy", "1")])
    assert time.monotonic() - started < 0.5
    assert [r.text for r in results] == ["slept 0.3", results[1].text, "slept 0.3", "A",
                                         "Tool Sleepy timed out after 0.2 s"]
    assert [r.ok for r in results] == [True, False, True, True, False]
    assert box.call_many([]) == []


def test_search_and_lookup_share_one_browser_per_box(demo):
    spec = ltlagent.load(REPO / "specs" / "react.yaml")
    box = ToolBox.for_spec(spec, docs=demo)
    assert box.names() == ("Search", "Lookup") and box.entry("Search").timeout == 5
    assert box.call("Lookup", "river").text == "No page is open: use Search first."
    assert "Paris" in box.call("Search", "Eiffel Tower").text
    assert "Seine" in box.call("Search", "Paris").text
    assert box.call("Lookup", "Seine").text.startswith("(Result 1 / 2)")
    other = ToolBox.for_spec(spec, docs=demo)  # another episode
    assert other.call("Lookup", "Seine").text == "No page is open: use Search first."
    box.reset()
    assert box.call("Lookup", "Seine").text == "No page is open: use Search first."


def test_search_without_documents_says_so(helpers):
    box = ToolBox.for_spec(ltlagent.load(REPO / "specs" / "react.yaml"))
    for name in ("Search", "Lookup"):
        result = box.call(name, "Paris")
        assert not result.ok and "--docs" in result.text and name in result.text


def test_extra_tools_add_and_override(helpers):
    spec = ltlagent.load(SPEC)
    box = ToolBox.for_spec(spec, extra={"Boom": lambda text: f"fine {text}", "Mine": str.lower})
    result = box.call("Boom", "x")
    assert result.ok and result.text == "fine x"
    assert box.call("Mine", "ABC").text == "abc" and box.entry("Mine").timeout == 10
    assert box.entry("Boom").timeout == 10 and box.entry("Sleepy").timeout == 0.2


@pytest.mark.parametrize("tools, message", [
    ('{function: "ltl_no_such_module_xyz:fn"}', "tool 'T': cannot import module 'ltl_no_such_module_xyz' for "
                                               "'function: ltl_no_such_module_xyz:fn'"),
    ('{function: "ltl_tool_helpers:missing"}', "tool 'T': module 'ltl_tool_helpers' has no attribute 'missing'"),
    ('{function: "ltl_tool_helpers:NOT_CALLABLE"}',
     "tool 'T': 'function: ltl_tool_helpers:NOT_CALLABLE' is not callable"),
    ('{entry_point: nothere}', "tool 'T': no entry point 'nothere' in group 'ltlagent.tools' (installed: shouter)"),
])
def test_bad_tool_targets_fail_at_build_time(helpers, tools, message):
    spec = ltlagent.load(textwrap.dedent(f'''\
        name: bad
        segments:
          question: {{tag: "Question:", by: env, input: task}}
          observation: {{tag: "Observation:", by: env, tool: T}}
        tools:
          T: {tools}
    '''))
    with pytest.raises(ToolError) as info:
        ToolBox.for_spec(spec)
    assert str(info.value).startswith(message)


def test_entry_point_that_fails_to_load(helpers, monkeypatch):
    monkeypatch.setattr(registry, "entry_points",
                        FakeEntryPoints(EntryPoint("broken", "ltl_no_such_module_xyz:fn", "ltlagent.tools")))
    spec = ltlagent.load(SPEC.replace("entry_point: shouter", "entry_point: broken"))
    with pytest.raises(ToolError, match="tool 'Ep': cannot load entry point 'broken': ModuleNotFoundError"):
        ToolBox.for_spec(spec)


def test_builtins_for_specs_that_bind_no_tools(demo):
    spec = ltlagent.load(textwrap.dedent('''\
        name: bare
        segments:
          question: {tag: "Question:", by: env, input: task}
          action: {tag: "Action:"}
          observation: {tag: "Observation:", by: env}
    '''))
    assert ToolBox.for_spec(spec).names() == ()
    box = ToolBox.for_spec(spec, docs=demo, builtins=("search", "lookup", "search"))
    assert box.names() == ("search", "lookup") and box.call("search", "Arno").text.startswith("The Arno is")
    with pytest.raises(ToolError, match="tool 'grep' is used by the spec but neither declared nor a built-in"):
        ToolBox.for_spec(spec, builtins=("grep",))


def test_toolbox_from_entries_and_compiled_spec(helpers):
    compiled = ltlagent.compile(ltlagent.load(REPO / "specs" / "react.yaml"))
    assert ToolBox.for_spec(compiled).names() == ("Search", "Lookup")
    box = ToolBox([registry.ToolEntry("Echo", lambda text: text, timeout=1)])
    assert box.call("Echo", "hi").text == "hi" and box.browser is None
