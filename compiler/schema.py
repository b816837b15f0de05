"""The pydantic v2 schema of YAML spec files: unknown keys and wrong types are errors."""
from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from .ast import PROMPT_FORMATS

BUILTIN_TOOLS = ("search", "lookup", "calculator", "finish")
CONTENT_KEYS = ("choice", "regex", "grammar", "json", "call")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class ToolCallModel(_Model):
    name: Optional[StrictStr] = None
    name_from: Optional[StrictStr] = None
    input_from: Optional[StrictStr] = None

    @model_validator(mode="after")
    def _one_name(self):
        if (self.name is None) == (self.name_from is None):
            raise ValueError("give exactly one of 'name' (a tool) or 'name_from' (a choice segment)")
        return self


class SegmentModel(_Model):
    tag: StrictStr = Field(min_length=1)
    by: Literal["model", "env"] = "model"
    description: Optional[StrictStr] = None
    choice: Optional[list[StrictStr]] = Field(default=None, min_length=1)
    regex: Optional[StrictStr] = Field(default=None, min_length=1)
    grammar: Optional[StrictStr] = Field(default=None, min_length=1)
    json_schema: Optional[Union[dict, bool]] = Field(default=None, alias="json")
    call: Optional[list[StrictStr]] = Field(default=None, min_length=1)
    max_tokens: Optional[int] = Field(default=None, gt=0)
    end: StrictStr = "\n"
    input: Optional[Literal["task", "user"]] = None
    tool: Optional[Union[StrictStr, ToolCallModel]] = None


class ToolModel(_Model):
    builtin: Optional[Literal["search", "lookup", "calculator", "finish"]] = None
    function: Optional[StrictStr] = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    entry_point: Optional[StrictStr] = None
    timeout: float = Field(default=10.0, gt=0)
    description: Optional[StrictStr] = None
    parameters: Optional[dict] = None
    returns: Optional[Union[dict, bool]] = None

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("builtin", "function", "entry_point") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a tool is exactly one of 'builtin', 'function' (module:function) or 'entry_point'")
        return self


class LtlRule(_Model):
    ltl: StrictStr
    why: Optional[StrictStr] = None


class PatternRule(_Model):
    pattern: StrictStr
    why: Optional[StrictStr] = None


class LimitsModel(_Model):
    max_segments: int = Field(default=50, gt=0)
    max_tokens: int = Field(default=2048, gt=0)
    max_states: int = Field(default=100_000, gt=0)


class PromptModel(_Model):
    instructions: StrictStr = ""
    examples: list[StrictStr] = []
    format: Optional[Literal[PROMPT_FORMATS]] = None


class SpecModel(_Model):
    name: StrictStr = Field(min_length=1)
    description: Optional[StrictStr] = None
    segments: dict[StrictStr, SegmentModel] = Field(min_length=1)
    behavior: list[Union[StrictStr, LtlRule, PatternRule]] = []
    tools: dict[StrictStr, ToolModel] = {}
    limits: LimitsModel = LimitsModel()
    prompt: PromptModel = PromptModel()
