"""A safe arithmetic evaluator for the ``calculator`` tool: the expression is parsed with ``ast.parse``
and walked node by node; nothing is ever passed to eval, exec or compile.

Accepted: int and float literals, ``+ - * / // % **``, unary ``+ -``, parentheses, the functions
``abs round min max sqrt floor ceil`` and the constants ``pi`` and ``e``. Before parsing, the text is
made friendlier to what models write:

* ``$`` signs are dropped, and ``×``/``÷``/``−`` read as ``*``/``/``/``-``; ``^`` means power;
* commas between digit groups are thousands separators (``1,000`` is 1000) except directly inside a
  function call's parentheses, where commas separate arguments (``max(1,000)`` is ``max(1, 0)``);
* ``x%`` not followed by an operand means ``x/100`` (``50% * 8`` is 4), while ``10 % 3`` is modulo;
* a trailing ``=`` is ignored.

Limits keep every evaluation cheap: at most ``MAX_LENGTH`` characters and ``MAX_DEPTH`` nesting levels,
exponents within ``±MAX_EXPONENT``, and every intermediate value within ``MAX_MAGNITUDE``.
"""
from __future__ import annotations

import ast
import math
import operator
import re

MAX_LENGTH = 1000
MAX_DEPTH = 100
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10 ** 100

FUNCTIONS = {"abs": (abs, 1, 1), "round": (round, 1, 2), "min": (min, 1, None), "max": (max, 1, None),
             "sqrt": (math.sqrt, 1, 1), "floor": (math.floor, 1, 1), "ceil": (math.ceil, 1, 1)}
CONSTANTS = {"pi": math.pi, "e": math.e}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: None}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorError(ValueError):
    """An expression the calculator refuses or cannot evaluate; the message says why."""


def evaluate(expression: str) -> str:
    """The value of an arithmetic expression as text: ints without ``.0`` (integral floats too, below
    1e15), other floats to 10 significant digits. Raises CalculatorError for anything else: unsupported
    syntax or names, division by zero, math domain errors, results or inputs past the limits."""
    tree = _parse(normalize(expression))
    try:
        value = _walk(tree, 0)
    except RecursionError:
        raise CalculatorError("expression too deeply nested") from None
    return format_number(value)


def normalize(expression: str) -> str:
    """The expression with ``$``, thousands separators, percent signs, ``^`` and a trailing ``=``
    rewritten as described in the module docstring. Raises CalculatorError past MAX_LENGTH."""
    if not isinstance(expression, str):
        raise CalculatorError(f"expected text, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression too long ({len(expression)} characters, limit {MAX_LENGTH})")
    text = expression.strip().rstrip("=").strip()
    text = text.replace("$", "").replace("×", "*").replace("÷", "/").replace("−", "-").replace("^", "**")
    text = _strip_thousands(text)
    return re.sub(r"(\d+(?:\.\d*)?|\.\d+)\s*%(?!\s*[\w.(])", r"(\1/100)", text)


_GROUPED = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\d.])|(?<![\w.])\d{1,3}(?:,\d{3})+\.\d+")
_CALL_OPEN = re.compile(r"[A-Za-z_]\w*\s*\Z")


def _strip_thousands(text: str) -> str:
    """Drop commas of digit groups (``12,345.5``) that are not directly inside a call's parentheses."""
    in_call, stack = [], []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(bool(_CALL_OPEN.search(text, max(0, i - 40), i)))
        elif ch == ")" and stack:
            stack.pop()
        in_call.append(bool(stack) and stack[-1])
    return _GROUPED.sub(lambda m: m.group() if in_call[m.start()] else m.group().replace(",", ""), text)


def _parse(text: str) -> ast.AST:
    if not text:
        raise CalculatorError("empty expression")
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise CalculatorError(f"invalid expression: {err.msg}") from None
    except (RecursionError, MemoryError):
        raise CalculatorError("expression too deeply nested") from None
    except ValueError as err:  # e.g. a NUL character
        raise CalculatorError(f"invalid expression: {err}") from None


def _walk(node: ast.AST, depth: int):
    if depth > MAX_DEPTH:
        raise CalculatorError(f"expression too deeply nested (limit {MAX_DEPTH} levels)")
    if isinstance(node, ast.Constant):
        return _constant(node.value)
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unsupported name {node.id!r} (only numbers, operators and the functions "
                              f"{', '.join(FUNCTIONS)})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _chain(node, depth)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand, depth + 1))
    if isinstance(node, ast.Call):
        return _call(node, depth)
    raise CalculatorError(f"unsupported syntax: {_describe(node)}")


def _chain(node: ast.BinOp, depth: int):
    """A left-leaning chain ``a + b - c ...`` folded iteratively, so long flat sums are not deep."""
    links = []
    while isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        links.append(node)
        node = node.left
    value = _walk(node, depth + 1)
    for link in reversed(links):
        value = _binary(link.op, value, _walk(link.right, depth + 1))
    return value


def _describe(node: ast.AST) -> str:
    names = {ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
             ast.Compare: "comparison", ast.BoolOp: "boolean operator", ast.BinOp: "this operator",
             ast.UnaryOp: "this operator", ast.Tuple: "tuple (a comma outside a function call)"}
    return names.get(type(node), type(node).__name__)


def _constant(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CalculatorError(f"unsupported constant {value!r} (only numbers)")
    return _checked(value)


def _binary(op: ast.operator, left, right):
    try:
        if isinstance(op, ast.Pow):
            return _checked(_power(left, right))
        return _checked(_BINARY[type(op)](left, right))
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result too large") from None


def _power(base, exponent):
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {format_number(exponent)} too large (limit ±{MAX_EXPONENT})")
    if abs(base) > 1 and exponent > 0 and exponent * math.log10(abs(base)) > math.log10(MAX_MAGNITUDE):
        raise CalculatorError("result too large")
    result = base ** exponent
    if isinstance(result, complex):
        raise CalculatorError("complex result (a negative number to a fractional power)")
    return result


def _call(node: ast.Call, depth: int):
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        name = node.func.id if isinstance(node.func, ast.Name) else _describe(node.func)
        raise CalculatorError(f"unsupported function {name!r} (known: {', '.join(FUNCTIONS)})")
    function, least, most = FUNCTIONS[node.func.id]
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise CalculatorError(f"{node.func.id}() takes plain positional arguments")
    if len(node.args) < least or (most is not None and len(node.args) > most):
        wanted = str(least) if least == most else f"{least} to {most}" if most else f"at least {least}"
        raise CalculatorError(f"{node.func.id}() takes {wanted} argument(s), got {len(node.args)}")
    args = [_walk(arg, depth + 1) for arg in node.args]
    if node.func.id == "round" and len(args) == 2 and not isinstance(args[1], int):
        raise CalculatorError("round()'s second argument must be an integer")
    try:
        return _checked(function(*args))
    except ValueError:
        raise CalculatorError(f"math domain error in {node.func.id}()") from None
    except OverflowError:
        raise CalculatorError("result too large") from None


def _checked(value):
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("result too large" if math.isinf(value) else "result is not a number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError(f"result too large (limit 1e{len(str(MAX_MAGNITUDE)) - 1})")
    return value


def format_number(value) -> str:
    """``12`` for ints and integral floats below 1e15, else 10 significant digits, trailing zeros
    stripped (``0.3333333333``, ``1.5e+20``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return str(value) if isinstance(value, int) else f"{value:.10g}"
