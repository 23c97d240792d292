"""Event triggers (micro-adjustments): config rules over the current event and the live session that name an action.

Two kinds, both evaluated in the core's `_apply`, so an action fires on the provisional path (within milliseconds
of the event's arrival) and is recomputed, exactly, if a late-arriving earlier event reorders the user's events:

- `when`: fires on an event that satisfies the expression, e.g. `event_type == 'hover' and hover_ms > 3000`.
  `once_per_session: true` fires it at most once per session (a threshold on a live session metric, such as
  `session_page_views > 20`, then fires when the metric crosses it, not on every event after).
- `after` / `unless` / `wait`: armed by an event satisfying `after`, disarmed by one satisfying `unless`; it fires
  `wait` of event time after the latest arming event when nothing disarmed it (a cart add with no purchase for
  10 minutes). It fires at the user's first event dated at or past that time, or when the watermark passes it: an
  event-time timer, the same on every engine (so with no further events it fires `allowed_lateness` after the due
  time, when no late purchase can still arrive).

Expressions: comparisons, and/or/not, arithmetic and numbers over the names in `EVENT_FIELDS` and
`SESSION_FIELDS`; the string fields (`event_type`, `category`, `device`, `variant`) compare with `==`, `!=`, `in`,
`not in` against quoted strings (`in` takes a list: `category in ('books', 'toys')`), once per comparison (no
chains), never in arithmetic, and event types are checked against the known ones. A numeric event field the event
does not carry (a click has no `hover_ms`) is NaN: every comparison with it is false except `!=` (so `not
hover_ms > 3000` is true for a click). An arithmetic error at run time (a division by zero) makes the rule false
for that event; it never stops the job.
"""
from __future__ import annotations

import ast
from typing import Callable, NamedTuple

from .events import EVENT_TYPES
from .segments import RuleError

NAN = float("nan")

# name -> (expression over `e`, the event tuple, and `s`, the live session; whether the field is a string)
EVENT_FIELDS = {
    "event_type": ("e[2]", True),
    "category": ("e[3]", True),
    "price": ("(e[4] if e[4] is not None else NAN)", False),
    "dwell_ms": ("(e[5] if e[5] is not None else NAN)", False),
    "scroll_depth": ("(e[6] if e[6] is not None else NAN)", False),
    "hover_ms": ("(e[7] if e[7] is not None else NAN)", False),
    "device": ("e[8]", True),
    "variant": ("e[9]", True),
}
SESSION_FIELDS = {
    "session_events": "s.n",
    "session_duration_s": "(s.last - s.start) / 1000",
    "session_page_views": "s.by_type[0]",
    "session_clicks": "s.by_type[1]",
    "session_scrolls": "s.by_type[2]",
    "session_hovers": "s.by_type[3]",
    "session_searches": "s.by_type[4]",
    "session_cart_adds": "s.by_type[5]",
    "session_purchases": "s.by_type[6]",
    "session_impressions": "s.by_type[7]",
    "session_dwell_max_s": "s.dwell_max / 1000",
    "session_scroll_max": "s.scroll_max",
    "session_hover_total_s": "s.hover_total / 1000",
    "session_categories": "len(s.cats)",
    "session_revenue": "s.revenue",
}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.Compare,
            ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.BinOp, ast.Add, ast.Sub,
            ast.Mult, ast.Div, ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List)
_STRING_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


class Trigger(NamedTuple):
    """One compiled trigger (see the module doc); `when` / `after` / `unless` take (event tuple, live session)."""
    name: str
    when: Callable | None
    after: Callable | None
    unless: Callable | None
    wait: int
    once_per_session: bool


def _strings(node: ast.AST) -> list | None:
    """The string constants of a `'x'` or `('x', 'y')` operand, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, (ast.Tuple, ast.List)) and node.elts and all(
            isinstance(x, ast.Constant) and isinstance(x.value, str) for x in node.elts):
        return list(node.elts)
    return None


def _is_str_field(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in EVENT_FIELDS and EVENT_FIELDS[node.id][1]


def _check(name: str, expr: str, tree: ast.AST) -> None:
    ok_strings: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise RuleError(f"trigger {name!r}: {type(node).__name__} is not allowed in {expr!r} (comparisons, "
                            "and/or/not, arithmetic, numbers, quoted strings and field names only)")
        if isinstance(node, ast.Name) and node.id not in EVENT_FIELDS and node.id not in SESSION_FIELDS:
            raise RuleError(f"trigger {name!r}: unknown field {node.id!r} in {expr!r} (event fields: "
                            f"{', '.join(EVENT_FIELDS)}; session fields: {', '.join(SESSION_FIELDS)})")
        if isinstance(node, (ast.BinOp, ast.UnaryOp)) and not isinstance(node.op, ast.Not):
            for x in ([node.left, node.right] if isinstance(node, ast.BinOp) else [node.operand]):
                if _is_str_field(x):
                    raise RuleError(f"trigger {name!r}: {x.id} is a string field: it takes no arithmetic, in "
                                    f"{expr!r}")
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if len(node.ops) > 1 and any(_is_str_field(x) or _strings(x) is not None for x in operands):
                raise RuleError(f"trigger {name!r}: compare a string field once (a == 'x'), not in a chain, in "
                                f"{expr!r}")
            for i, op in enumerate(node.ops):
                a, b = operands[i], operands[i + 1]
                if _is_str_field(b) and not _is_str_field(a):  # 'x' == category: the field goes first
                    a, b = b, a
                if _is_str_field(a):
                    consts = _strings(b)
                    field = a
                    if consts is None:
                        raise RuleError(f"trigger {name!r}: {a.id} is a string field: compare it with quoted "
                                        f"strings (==, !=, in, not in) in {expr!r}")
                    if isinstance(op, (ast.In, ast.NotIn)) and not isinstance(b, (ast.Tuple, ast.List)):
                        raise RuleError(f"trigger {name!r}: {a.id} in / not in takes a list of quoted strings, "
                                        f"e.g. {a.id} in ('a', 'b'), in {expr!r}")
                    if isinstance(op, (ast.In, ast.NotIn)) and b is not operands[i + 1]:
                        raise RuleError(f"trigger {name!r}: write {a.id} in (...), the field first, in {expr!r}")
                elif _strings(a) is not None or _strings(b) is not None:
                    consts = _strings(a) if _strings(a) is not None else _strings(b)
                    raise RuleError(f"trigger {name!r}: the string {consts[0].value!r} must be compared with a "
                                    f"string field (event_type, category, device, variant) in {expr!r}")
                else:
                    continue
                if not isinstance(op, _STRING_OPS):
                    raise RuleError(f"trigger {name!r}: {field.id} compares with ==, !=, in or not in only, "
                                    f"in {expr!r}")
                if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(b, (ast.Tuple, ast.List)):
                    raise RuleError(f"trigger {name!r}: {field.id} == / != takes one quoted string (a list goes "
                                    f"with in / not in), in {expr!r}")
                if field.id == "event_type":
                    for c in consts:
                        if c.value not in EVENT_TYPES:
                            raise RuleError(f"trigger {name!r}: unknown event type {c.value!r} in {expr!r} "
                                            f"(known: {', '.join(EVENT_TYPES)})")
                ok_strings.update(id(c) for c in consts)
    for node in ast.walk(tree):  # once every comparison has claimed its strings
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                if id(node) not in ok_strings:
                    raise RuleError(f"trigger {name!r}: the string {node.value!r} must be compared with a string "
                                    f"field (event_type, category, device, variant) in {expr!r}")
            elif not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                raise RuleError(f"trigger {name!r}: only numbers and quoted strings may appear as constants in "
                                f"{expr!r}")
            elif abs(node.value) > 1e15:
                raise RuleError(f"trigger {name!r}: a number is out of range (at most 1e15 in size), in "
                                f"{expr[:80]!r}")
        if isinstance(node, (ast.Tuple, ast.List)) and _strings(node) is None:
            raise RuleError(f"trigger {name!r}: a list may only hold quoted strings, after in / not in, in {expr!r}")


class _Rewrite(ast.NodeTransformer):
    """Field names -> their expressions over (e, s); event-type names -> their codes."""

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        operands = [node.left, *node.comparators]
        if any(isinstance(x, ast.Name) and x.id == "event_type" for x in operands):
            for i, x in enumerate(operands):
                consts = _strings(x)
                if consts is not None:
                    for c in consts:
                        c.value = EVENT_TYPES.index(c.value)
                if isinstance(x, ast.List):  # a tuple is a constant the compiler folds
                    operands[i] = ast.Tuple(x.elts, ast.Load())
            node.left, node.comparators = operands[0], operands[1:]
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        src = EVENT_FIELDS[node.id][0] if node.id in EVENT_FIELDS else SESSION_FIELDS[node.id]
        return ast.copy_location(ast.parse(src, mode="eval").body, node)


def compile_condition(name: str, expr: str) -> Callable:
    """A function (event tuple, live session) -> bool for one trigger expression; RuleError when it is invalid."""
    if not isinstance(expr, str) or not expr.strip():
        raise RuleError(f"trigger {name!r}: the expression is empty")
    if len(expr) > 2000:
        raise RuleError(f"trigger {name!r}: the expression is longer than 2,000 characters")
    try:
        tree = ast.parse(expr, mode="eval")
        _check(name, expr, tree)
    except SyntaxError as exc:
        raise RuleError(f"trigger {name!r}: not a valid expression ({exc.msg}): {expr!r}") from None
    except (RecursionError, MemoryError):
        raise RuleError(f"trigger {name!r}: the expression is nested too deeply") from None
    body = _Rewrite().visit(tree).body
    fn = ast.Expression(ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[ast.arg("e"), ast.arg("s")], kwonlyargs=[], kw_defaults=[],
                           defaults=[]), body=body))
    ast.fix_missing_locations(fn)
    return eval(compile(fn, f"<trigger {name}>", "eval"), {"__builtins__": {}, "NAN": NAN, "len": len}, {})


def compile_triggers(rules) -> tuple[Trigger, ...]:
    """Validate and compile the configured triggers (`config.TriggerRule`s); RuleError names the first bad one."""
    out = []
    seen = set()
    for r in rules:
        if r.name in seen:
            raise RuleError(f"trigger {r.name!r} is defined twice")
        seen.add(r.name)
        if r.when is not None:
            if r.after is not None or r.unless is not None or r.wait:
                raise RuleError(f"trigger {r.name!r}: give either `when`, or `after` with `wait` (and an optional "
                                "`unless`), not both")
            out.append(Trigger(r.name, compile_condition(r.name, r.when), None, None, 0, r.once_per_session))
        else:
            if r.after is None or not r.wait:
                raise RuleError(f"trigger {r.name!r}: needs `when`, or `after` with a positive `wait`")
            if r.once_per_session:
                raise RuleError(f"trigger {r.name!r}: once_per_session applies to `when` triggers only")
            out.append(Trigger(r.name, None, compile_condition(r.name, r.after),
                               compile_condition(r.name, r.unless) if r.unless is not None else None, r.wait, False))
    return tuple(out)
