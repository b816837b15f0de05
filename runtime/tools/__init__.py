"""The tools layer of the runtime: a BM25 document store with a ReAct browser (Search / Lookup), a safe
calculator, and the ToolBox that builds a spec's tools and calls them with timeouts, never raising."""
from .calculator import CalculatorError, evaluate
from .docstore import Browser, DocStore, DocStoreError, Page
from .registry import ToolBox, ToolEntry, ToolError, ToolResult, ToolUnavailable, one_line

__all__ = ["Browser", "CalculatorError", "DocStore", "DocStoreError", "Page", "ToolBox", "ToolEntry",
           "ToolError", "ToolResult", "ToolUnavailable", "evaluate", "one_line"]
