"""The composite tools of the agent library: ReWOO's solver, PASS's summarize / list_results and
Reflexion's evaluator, run as episode tools through a real ToolBox over the demo document store."""
from __future__ import annotations

import threading

import pytest

import ltlagent
from ltlagent.runtime.decode import SegmentRecord
from ltlagent.runtime.environment import Environment
from ltlagent.runtime.tools import DocStore, ToolBox
from ltlagent.runtime.tools.episode import Episode, default_grader, episode_tool
from ltlagent.runtime.tools.passes import content_words, relevant

from paths import REPO, SPECS

DEMO = REPO / "specs" / "docs" / "demo.jsonl"


def record(name, text="", option=None, by="model"):
    return SegmentRecord(name, f"{name}.{option}" if option else name, option, text, by, 0, 0, 0, 0, 0, 0.0)


@pytest.fixture(scope="module")
def docs():
    return DocStore.from_jsonl(DEMO)


def box(spec_name, docs):
    return ToolBox.for_spec(ltlagent.load(SPECS / f"{spec_name}.yaml"), docs=docs)


def test_rewoo_solver_runs_steps_in_order_and_substitutes_evidence(docs):
    toolbox = box("rewoo", docs)
    plan = ("Find the tower. #E1 = Search[Eiffel Tower]\n"
            "Then: Find when it was finished. #E2 = Lookup[completed]\n"
            "Then: Open the page named in the evidence. #E3 = Search[#E2]")
    result = toolbox.call("rewoo_solver", plan, Episode(toolbox))
    assert result.ok, result.text
    first = toolbox.call("Search", "Eiffel Tower").text
    assert result.text.startswith(f"#E1 = {first} #E2 = (Result 1 / 1) ")
    assert "completed in 1889" in result.text
    assert "#E3 = Could not find (Result 1 / 1)" in result.text  # #E2's result replaced the variable


def test_rewoo_solver_reports_a_plan_without_steps(docs):
    toolbox = box("rewoo", docs)
    assert "no step" in toolbox.call("rewoo_solver", "just words", Episode(toolbox)).text


def step_records(*calls, plan="Find the rivers of Paris and Rome."):
    records = [record("question", "q", by="env"), record("plan", "old plan"), record("action", option="Search"),
               record("action_input", "Louvre"), record("summary", "…", by="env"), record("plan", plan)]
    for action, argument in calls:
        records += [record("action", option=action), record("action_input", argument)]
    return tuple(records)


def test_pass_summarize_reads_the_calls_since_the_latest_plan(docs):
    toolbox = box("pass", docs)
    records = step_records(("Search", "Paris"), ("Search", "Rome"))
    episode = Episode(toolbox, "q", records)
    text = toolbox.call("summarize", records[-5].text, episode).text
    assert text.startswith("Paris: Paris is the capital") and " Rome: " in text
    assert "Louvre" not in text.split(" Rome: ")[1]  # the earlier step's call is not re-run
    words = content_words("Find the rivers of Paris and Rome.")
    assert words == {"rivers", "paris", "rome"}
    paris = toolbox.call("Search", "Paris").text
    assert text.split(" Rome: ")[0] == f"Paris: {relevant(paris, words)}"


def test_relevant_keeps_the_first_sentence_and_matching_ones():
    text = "Alpha is a town. It has a river. The river is long. Bread is sold."
    assert relevant(text, {"river"}) == "Alpha is a town. It has a river. The river is long."
    assert relevant(text, set()) == "Alpha is a town."


def test_pass_list_results_numbers_raw_results_in_call_order(docs):
    toolbox = box("pass_list", docs)
    records = step_records(("Search", "Seine"), ("Search", "Nowhere Town"))
    text = toolbox.call("list_results", "plan", Episode(toolbox, "q", records)).text
    seine = toolbox.call("Search", "Seine").text
    assert text.startswith(f"(1) Search[Seine]: {seine} (2) Search[Nowhere Town]: Could not find Nowhere Town.")


def test_concurrent_searches_leave_the_page_of_the_last_successful_one(docs):
    toolbox = box("pass_list", docs)
    for _ in range(5):
        toolbox.reset()
        records = step_records(("Search", "Paris"), ("Search", "Seine"), ("Search", "Nowhere Town"))
        toolbox.call("list_results", "plan", Episode(toolbox, "q", records))
        assert toolbox.browser.page.title == "Seine"
    toolbox.reset()
    records = step_records(("Search", "Paris"), ("Search", "Seine"), ("Search", ""), ("Search", "Nowhere"))
    toolbox.call("list_results", "plan", Episode(toolbox, "q", records))
    assert toolbox.browser.page.title == "Seine"  # failed and empty searches open nothing
    lookups = step_records(("Lookup", "river"), ("Lookup", "river"))
    text = toolbox.call("list_results", "plan", Episode(toolbox, "q", lookups)).text
    assert "(1) Lookup[river]: (Result 1 / " in text and "(2) Lookup[river]: (Result 2 / " in text


def test_reflexion_evaluator_grades_against_the_reference(docs):
    toolbox = box("reflexion", docs)
    grade = lambda answer: toolbox.call("evaluate", answer, Episode(toolbox, "q", (), "the Seine")).text
    assert grade("Seine") == "pass" and grade("The  seine.") == "pass" and grade("Paris") == "fail"
    numeric = Episode(toolbox, "q", (), "42")
    assert toolbox.call("evaluate", "It is 42.0", numeric).text == "pass"
    custom = Episode(toolbox, "q", (), "x", grader=lambda answer, gold: answer == "anything")
    assert toolbox.call("evaluate", "anything", custom).text == "pass"


def test_reflexion_evaluator_without_reference_is_an_unavailable_tool(docs):
    toolbox = box("reflexion", docs)
    result = toolbox.call("evaluate", "Seine", Episode(toolbox))
    assert not result.ok and "No reference answer" in result.text and "--reference" in result.text


def test_default_grader():
    assert default_grader("Charles Darwin", "charles darwin") and not default_grader("Darwin", "Charles Darwin")
    assert default_grader("The answer is 1,200", "1200") and not default_grader("12", "1200")


def test_environment_hands_segments_and_reference_to_episode_tools():
    seen = []

    @episode_tool
    def spy(text, episode):
        seen.append((text, episode.task, [r.name for r in episode.records], episode.reference))
        return "ok"

    spec = ltlagent.load(SPECS / "rewoo.yaml")
    toolbox = ToolBox.for_spec(spec, extra={"rewoo_solver": spy})
    env = Environment("the task", toolbox, reference="gold")
    records = [record("question", "the task", by="env"), record("plan", "p #E1 = Search[x]")]
    text, tool = env.produce(spec.segment("evidence"), records)
    assert text == "ok" and tool["name"] == "rewoo_solver" and tool["input"] == "p #E1 = Search[x]"
    assert seen == [("p #E1 = Search[x]", "the task", ["question", "plan"], "gold")]


def test_plain_tools_still_take_one_argument():
    calls = []
    toolbox = ToolBox.for_spec(ltlagent.load(SPECS / "rewoo.yaml"), extra={"rewoo_solver": calls.append})
    assert toolbox.call("rewoo_solver", "text", Episode(toolbox)).ok and calls == ["text"]


def test_a_mixed_step_runs_searches_then_lookups_in_call_order(docs):
    toolbox = box("pass_list", docs)
    records = step_records(("Search", "Paris"), ("Lookup", "Seine"), ("Search", "Seine"), ("Lookup", "Paris"))
    for _ in range(3):
        toolbox.reset()
        text = toolbox.call("list_results", "plan", Episode(toolbox, "q", records)).text
        paris_hit = next(s for s in DocStore.from_jsonl(DEMO).get("Paris").sentences if "seine" in s.casefold())
        assert f"(2) Lookup[Seine]: (Result 1 / " in text and paris_hit in text.split("(3)")[0]
        assert "(4) Lookup[Paris]: (Result 1 / " in text  # read on the Seine page, opened by call 3


def test_a_composite_tool_that_times_out_makes_no_further_calls(docs):
    release, calls = threading.Event(), []

    @episode_tool
    def slow(text, episode):
        release.wait(5)
        calls.append(episode.call("Search", "Seine"))
        return "late"

    spec = ltlagent.load(SPECS / "rewoo.yaml")
    toolbox = ToolBox.for_spec(spec, docs=docs, extra={"rewoo_solver": slow})
    object.__setattr__(toolbox.entry("rewoo_solver"), "timeout", 0.2)
    result = toolbox.call("rewoo_solver", "plan", Episode(toolbox))
    assert not result.ok and "timed out" in result.text
    release.set()
    for _ in range(100):
        if calls:
            break
        threading.Event().wait(0.02)
    assert calls and not calls[0].ok and "Cancelled" in calls[0].text
    assert toolbox.browser.page is None  # the abandoned tool did not open a page
