"""Prompt formats: the text a run's transcript follows, as a plain completion or in the model's chat format.

* ``completion``: the instructions, the few-shot examples, a blank line; the transcript follows (no
  template). Encoded literally, as the transcript is.
* ``chat-system``: the model's own chat template renders a system turn holding the instructions and the
  examples (as ``completion`` writes them), a user turn holding the task, and the opening of the
  assistant's turn (``add_generation_prompt``); the transcript, env segments included, continues that turn.
* ``chat-turns``: a system turn with the instructions only; then each example as a prior user / assistant
  pair (the user turn is the example's task: its ``input: task`` segment's content, else the content of
  the env segments before its first model segment; the assistant turn is the whole example transcript, as
  the model will write its own); then the task's user turn and the opening of the assistant's turn.

A user turn with nothing in it (a spec without a task) is left out. The template is prompt text only: the
decoder reads the transcript after it exactly as in a completion, and ``verify`` checks the examples, not
the template around them. Templates are rendered in jinja2's immutable sandbox, as transformers renders
them (chat templates from the hub are untrusted code).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Optional

from ltlagent.compiler.ast import resolve_prompt_format
from ltlagent.compiler.verify import split_segments

PLACEMENTS = ("chat-system", "chat-turns")


class PromptFormatError(Exception):
    """A prompt format that cannot be used with this model (no chat template, or a template that refuses
    the conversation); the message says what to do."""


@dataclass(frozen=True)
class RenderedPrompt:
    """A run's prompt: its text, the concrete format, and whether the text's special-token spellings are
    the special tokens (a chat template's ``<|im_start|>``) or literal text (``completion``). ``parts``, for
    a chat prompt, splits the text into what the template wrote (True) and the conversation's contents
    (False: instructions, examples, task), so contents can be kept literal (see ``prompt_ids``)."""

    text: str
    format: str = "completion"
    specials: bool = False
    parts: tuple[tuple[str, bool], ...] = ()


def completion_text(spec, examples: Optional[list[str]] = None) -> str:
    """Instructions, then the few-shot examples, then a blank line: the run's transcript follows."""
    shots = examples if examples is not None else [e.text for e in spec.prompt.examples]
    parts = [spec.prompt.instructions.strip()] + [s.strip() for s in shots]
    text = "\n\n".join(p for p in parts if p)
    return text + "\n\n" if text else ""


def prompt_ids(prompt, vocab) -> tuple[str, list[int]]:
    """The text and token ids the model is fed before the transcript, for a RenderedPrompt or a plain
    string (literal, as before formats existed); never empty (a newline stands for no prompt).

    A chat prompt is encoded whole with special tokens recognised, exactly as the model's tokenizer reads
    ``apply_chat_template``'s text; only when a content (a task, an example) holds a special token's
    spelling (``<|im_end|>`` in a question) is it encoded part by part, that content literally, so no
    content can open or close a turn."""
    if isinstance(prompt, str):
        prompt = RenderedPrompt(prompt)
    if not prompt.specials:
        ids = vocab.encode(prompt.text)
    elif all(vocab.encode(text) == vocab.encode_prompt(text) for text, special in prompt.parts if not special):
        ids = vocab.encode_prompt(prompt.text)
    else:
        ids = [i for text, special in prompt.parts
               for i in (vocab.encode_prompt(text) if special else vocab.encode(text))]
    return prompt.text, ids or vocab.encode("\n")


def example_task(spec, text: str) -> str:
    """An example's user turn for ``chat-turns``: the content of its ``input: task`` segment, else of the env
    segments before its first model segment (joined by newlines), else ""."""
    pieces, _ = split_segments(text, spec.segments)
    for piece in pieces:
        if piece.segment.input == "task":
            return piece.content
    leading = []
    for piece in pieces:
        if piece.segment.by != "env":
            break
        leading.append(piece.content)
    return "\n".join(leading)


def chat_messages(spec, examples: Optional[list[str]], task: str, placement: str) -> list[dict]:
    """The conversation before the assistant's turn for ``placement`` (``chat-system`` or ``chat-turns``,
    see the module docstring). Raises ValueError for another placement."""
    shots = examples if examples is not None else [e.text for e in spec.prompt.examples]
    if placement == "chat-system":
        messages = [_turn("system", completion_text(spec, shots).strip())]
    elif placement == "chat-turns":
        messages = [_turn("system", spec.prompt.instructions.strip())]
        for shot in shots:
            messages += [_turn("user", example_task(spec, shot)), _turn("assistant", shot.strip() + "\n")]
    else:
        raise ValueError(f"no chat placement {placement!r}; use one of {', '.join(PLACEMENTS)}")
    messages.append(_turn("user", task.strip()))
    return [m for m in messages if m["content"].strip()]


def _turn(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def render_chat(template, messages: list[dict], model: str = "the model") -> str:
    """``messages`` rendered by the chat template (a ChatTemplate) up to where the assistant's turn
    continues (``add_generation_prompt=True``). Raises PromptFormatError when the template does not
    compile or refuses the conversation (``raise_exception`` in it, or any error while rendering)."""
    return "".join(text for text, _ in render_chat_parts(template, messages, model))


_MARK = re.compile("\ue000(\\d+)\ue001")  # private-use characters around a message's index


def render_chat_parts(template, messages: list[dict], model: str = "the model") -> tuple[tuple[str, bool], ...]:
    """``render_chat``'s text as (text, written by the template) parts: the template rendered once with
    each message's content replaced by a marker, the contents put back where the markers landed. When the
    template does not pass contents through unchanged (it trims or inspects them), one template part.
    Raises PromptFormatError as ``render_chat``."""
    whole = _render(template, messages, model)
    marked = _render(template, [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)], model)
    pieces = _MARK.split(marked)
    parts = []
    for k, piece in enumerate(pieces):
        if k % 2 == 0:
            parts.append((piece, True))
        else:
            parts.append((messages[int(piece)]["content"], False))
    if "".join(text for text, _ in parts) != whole:
        return ((whole, True),)
    return tuple(p for p in parts if p[0])


def _render(template, messages: list[dict], model: str) -> str:
    """One rendering (see ``render_chat``)."""
    import jinja2

    try:
        compiled = _compiled(template.source)
        return compiled.render(messages=messages, add_generation_prompt=True, bos_token=template.bos_token,
                               eos_token=template.eos_token)
    except jinja2.TemplateError as err:
        raise PromptFormatError(f"the chat template of {model} refused the prompt: {err}; try another "
                                "--prompt-format (chat-system, chat-turns or completion)") from None
    except Exception as err:  # a template is a program: anything it raises is the template's failure
        raise PromptFormatError(f"the chat template of {model} failed: {type(err).__name__}: {err}; use "
                                "--prompt-format completion") from None


@lru_cache(maxsize=16)
def _compiled(source: str):
    """A template compiled once in the immutable sandbox, with the globals and filters transformers gives
    templates (``raise_exception``, ``strftime_now``, a ``tojson`` that does not escape HTML, loop controls,
    and ``{% generation %}`` blocks rendered as their content)."""
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols, _generation_extension()])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def _raise_exception(message):
    import jinja2

    raise jinja2.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _generation_extension():
    import jinja2.ext
    import jinja2.nodes

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` (transformers marks assistant text with it): the body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller):
            return caller()

    return Generation


def build_prompt(spec, examples: Optional[list[str]], task: str, fmt: str, template=None,
                 model: str = "the model") -> RenderedPrompt:
    """The prompt of one run in the concrete format ``fmt`` (``completion``, ``chat-system``,
    ``chat-turns``). Raises PromptFormatError for a chat format without a template, or a template that
    fails."""
    if fmt == "completion":
        return RenderedPrompt(completion_text(spec, examples), fmt, False)
    if template is None:
        raise no_template_error(model)
    parts = render_chat_parts(template, chat_messages(spec, examples, task, fmt), model)
    return RenderedPrompt("".join(text for text, _ in parts), fmt, True, parts)


def no_template_error(model: str) -> PromptFormatError:
    return PromptFormatError(f"{model} has no chat template (neither its tokenizer config nor its GGUF metadata "
                             "holds one), so it cannot be prompted in its chat format; use --prompt-format "
                             "completion (or prompt: {format: completion} in the spec)")


def choose_format(asked: Optional[str], spec, template, model: str = "the model") -> str:
    """The concrete format of a run: ``asked`` (the command line's), else the spec's ``prompt.format``, else
    the default (``chat``). A chat format asked for on a model without a template raises
    PromptFormatError; the default falls back to ``completion`` there (``fallback_note`` says so)."""
    wanted = asked if asked is not None else spec.prompt.format
    try:
        fmt = resolve_prompt_format(wanted)
    except ValueError as err:
        raise PromptFormatError(str(err)) from None
    if fmt != "completion" and template is None:
        if wanted is None:
            return "completion"
        raise no_template_error(model)
    return fmt


def fallback_note(asked: Optional[str], spec, template, model: str = "the model") -> Optional[str]:
    """Why a run's format is not the one it would have had: the default chat format on a model without a
    chat template runs as a completion (a base model just works); None otherwise."""
    wanted = asked if asked is not None else spec.prompt.format
    if wanted is not None or template is not None or resolve_prompt_format(None) == "completion":
        return None
    return (f"{model} has no chat template, so the default prompt format ({resolve_prompt_format(None)}) fell "
            "back to completion; set --prompt-format completion (or prompt: {format: completion}) to say so")
