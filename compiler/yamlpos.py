"""YAML (safe loading only) into plain data plus the source span of every key and value."""
from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from .errors import SpecSemanticError, SpecSyntaxError
from .source import Source, Span

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
    """Parse YAML safely. Raises SpecSyntaxError (located) for malformed YAML, SpecSemanticError for
    duplicate keys or non-scalar keys."""
    try:
        node = yaml.compose(source.text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        offset = mark.index if mark is not None else 0
        message = f"invalid YAML: {err.problem or err.context}"
        raise SpecSyntaxError(message, Span(source, offset, offset + 1)) from None
    located = Located(None, source)
    if node is not None:
        located.data = _convert(node, (), None, located)
    return located


def _scalar(node: yaml.ScalarNode, source: Source):
    """A scalar's value by YAML's safe rules. Raises SpecSemanticError (located) for values those rules
    reject, e.g. an impossible timestamp."""
    try:
        return yaml.SafeLoader("").construct_object(node)
    except yaml.YAMLError as err:
        raise SpecSemanticError(f"invalid YAML value: {getattr(err, 'problem', None) or err}",
                                _span(source, node)) from None


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
