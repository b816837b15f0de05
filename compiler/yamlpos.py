"""YAML (safe loading only) into plain data plus the source span of every key and value."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from .errors import SpecSemanticError, SpecSyntaxError
from .source import Source, Span, escape_char

MAX_DEPTH = 100  # nested mappings and lists; specs need a handful, PyYAML's composer recurses

Path = tuple  # keys (str) and list indices (int) from the document root


@dataclass
class Located:
    """Plain data from a YAML document, with ``spans[path] = (key span or None, value span)``."""

    data: object
    source: Source
    spans: dict = field(default_factory=dict)

    def value_span(self, path: Path) -> Span:
        """The span of the value at ``path``, or of its nearest located ancestor."""
        return self._nearest(path)[1]

    def key_span(self, path: Path) -> Span:
        """The span of the key at ``path`` (its value's span for list items and the root)."""
        key, value = self._nearest(path)
        return key or value

    def _nearest(self, path: Path):
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.spans:
                return self.spans[tuple(path[:end])]
        return (None, Span(self.source, 0, 1))


def _span(source: Source, node: yaml.Node) -> Span:
    return Span(source, node.start_mark.index, max(node.end_mark.index, node.start_mark.index + 1))


def load_yaml(source: Source) -> Located:
    """Parse YAML safely. Raises SpecSyntaxError (located) for malformed YAML, characters YAML forbids
    and nesting deeper than MAX_DEPTH; SpecSemanticError for duplicate keys, non-scalar keys and values
    YAML's safe rules reject."""
    try:
        _check_depth(source)
        node = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.reader.ReaderError as err:
        raise _reader_error(err, source) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        offset = mark.index if mark is not None else 0
        message = f"invalid YAML: {err.problem or err.context}"
        raise SpecSyntaxError(message, Span(source, offset, offset + 1)) from None
    located = Located(None, source)
    if node is not None:
        located.data = _convert(node, (), None, located)
    return located


def _reader_error(err: yaml.reader.ReaderError, source: Source) -> SpecSyntaxError:
    """A located error for a character YAML forbids anywhere, even in a comment."""
    offset = err.position
    char = chr(err.character) if isinstance(err.character, int) else str(err.character)
    shown = escape_char(char) if len(char) == 1 else repr(char)
    return SpecSyntaxError(f"YAML forbids the character {shown} (control characters other than tab and line "
                           "breaks, lone surrogates, U+FFFE and U+FFFF), even in comments",
                           Span(source, offset, offset + 1), "write it as an escape in a double-quoted string, "
                           "e.g. \"\\x7f\", or remove it")


def _check_depth(source: Source) -> None:
    """Raise SpecSyntaxError at the first mapping or list nested deeper than MAX_DEPTH (read from the
    event stream, which is not recursive)."""
    depth = 0
    for event in yaml.parse(source.text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                start = event.start_mark.index
                raise SpecSyntaxError(f"the YAML is nested more than {MAX_DEPTH} mappings or lists deep",
                                      Span(source, start, start + 1))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _scalar(node: yaml.ScalarNode, source: Source):
    """A scalar's value by YAML's safe rules. Raises SpecSemanticError (located) for values those rules
    reject, e.g. an impossible timestamp, and for strings with a lone surrogate (an escape such as
    ``"\\ud800"``: no UTF-8 text can hold it)."""
    try:
        value = yaml.SafeLoader("").construct_object(node)
    except (yaml.YAMLError, ValueError, OverflowError) as err:  # e.g. 2024-13-45: "month must be in 1..12"
        raise SpecSemanticError(f"invalid YAML value: {getattr(err, 'problem', None) or err}",
                                _span(source, node)) from None
    if isinstance(value, str) and _SURROGATE.search(value):
        char = _SURROGATE.search(value).group()
        raise SpecSemanticError(f"the string holds a lone surrogate {escape_char(char)}, which no UTF-8 text can "
                                "hold", _span(source, node))
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _convert(node: yaml.Node, path: Path, key_span, located: Located):
    source = located.source
    located.spans[path] = (key_span, _span(source, node))
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node, source)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), None, located) for i, item in enumerate(node.value)]
    result: dict = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise SpecSemanticError("mapping keys must be plain scalars", _span(source, key_node))
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise SpecSemanticError("YAML merge keys (<<) are not supported in specs; write the keys out",
                                    _span(source, key_node))
        key = _scalar(key_node, source)
        if key in result:
            raise SpecSemanticError(f"duplicate key {key!r}", _span(source, key_node))
        result[key] = _convert(value_node, path + (key,), _span(source, key_node), located)
    return result
