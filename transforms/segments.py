"""Rule segments: safe expressions over the feature vector, compiled once, first match wins."""
from __future__ import annotations

import ast
from typing import Callable, Iterable, Sequence

_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
            ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div,
            ast.Name, ast.Load, ast.Constant)


class RuleError(ValueError):
    """A segment rule that cannot be used: bad syntax, a forbidden construct, an unknown feature."""


class _ToIndex(ast.NodeTransformer):
    def __init__(self, index: dict[str, int]):
        self.index = index

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(
            ast.Subscript(value=ast.Name("r", ast.Load()), slice=ast.Constant(self.index[node.id]), ctx=ast.Load()),
            node)


def compile_rule(name: str, expr: str, feature_names: Sequence[str]) -> Callable[[Sequence[float]], bool]:
    """A function of a feature row that says whether the rule matches."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"rule {name!r}: not a valid expression ({exc.msg}): {expr!r}") from None
    index = {n: i for i, n in enumerate(feature_names)}
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise RuleError(f"rule {name!r}: {type(node).__name__} is not allowed in {expr!r} "
                            "(comparisons, and/or/not, arithmetic, numbers and feature names only)")
        if isinstance(node, ast.Name) and node.id not in index:
            raise RuleError(f"rule {name!r}: unknown feature {node.id!r} in {expr!r}")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            raise RuleError(f"rule {name!r}: only numbers may appear as constants in {expr!r}")
    body = _ToIndex(index).visit(tree).body
    fn = ast.Expression(ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[ast.arg("r")], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body))
    ast.fix_missing_locations(fn)
    return eval(compile(fn, f"<segment {name}>", "eval"), {"__builtins__": {}}, {})


class Segmenter:
    """Assigns the first matching rule's name, or the default."""

    def __init__(self, rules: Iterable, feature_names: Sequence[str], default: str = "general"):
        self.names: list[str] = []
        self._fns: list[Callable] = []
        seen = set()
        for r in rules:
            if r.name in seen:
                raise RuleError(f"rule {r.name!r} is defined twice")
            seen.add(r.name)
            self.names.append(r.name)
            self._fns.append(compile_rule(r.name, r.when, feature_names))
        self.default = default

    def assign(self, row: Sequence[float]) -> str:
        for name, fn in zip(self.names, self._fns):
            try:
                if fn(row):
                    return name
            except ZeroDivisionError:
                continue
        return self.default


def compile_rules(rules: Iterable, feature_names: Sequence[str]) -> Segmenter:
    """Validate and compile rules against a configuration's feature names (`features.feature_names(cfg)`)."""
    return Segmenter(rules, feature_names)
