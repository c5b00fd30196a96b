"""``derived:``: signals computed from others of the same station or meter.

A mapping's top-level ``derived:`` list defines a signal by an arithmetic expression over other
signals, e.g. ``{signal: line1/press/produced, expr: "line1/press/good + line1/press/scrap"}`` for a
PLC that counts good and scrap parts but not their sum. The rules:

- **Arithmetic only.** Numbers, signal names, ``+ - * /``, unary minus and parentheses. The text
  is parsed with ``ast`` and every node checked; nothing is ever evaluated by Python's ``eval``.
  A signal name is written in full, ``<line>/<station>/<name>`` (or ``site/<meter>/<name>``): a
  ``/`` between names that are not one signal needs spaces around it (``a/b/c / 2``), and so does a
  ``-`` after a name (names may contain ``-``: ``a/b/c-2`` is one name).
- **Checked at load.** Every name must be a numeric signal of the factory, all of the same station
  or meter as the derived signal (mapping.py reports a problem with the file, the line and
  ``derived[i]``). A derived signal is not an input of another, and no mapping entry feeds it by
  its fixed name.
- **Recomputed on each input.** Each Sample of an input that a source forwards recomputes the
  derived signals that use it, once every input has had a value. The result carries the latest
  time of its inputs (and that input's clock as ``ts_kind``) and the worst quality among them (a Bad
  input gives a Bad NaN, which the twin counts and keeps out of KPIs). A division by zero, or a
  result that is not finite, is a counted rejection of the source that delivered the input
  (``division_by_zero``, ``not_finite``), never a crash and never a value.
- **One instant, one value.** Two inputs of one PLC scan arrive one after the other with the same
  time; the second recomputation would repeat the first one's time with the complete value, and
  the twin keeps only the first Sample of a (signal, time). The complete value is therefore stamped
  one microsecond later.

``with_derived(sources, derived)`` (called by ``registry.build_sources``) wraps every source so
that what it puts on the twin's queue passes through one shared ``DerivedEngine``; a mapping
without ``derived:`` gets its sources back unchanged.
"""

from __future__ import annotations

import ast
import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated

from pydantic import Field, field_validator

from factory_models import Quality, Sample

from .config_base import Strict

#: a signal reference: three name segments joined by "/" (factory_models.schema NAME each)
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_SIGNAL_REF = re.compile(rf"(?<![A-Za-z0-9_./])({_SEGMENT}/{_SEGMENT}/{_SEGMENT})")
_MAX_EXPR = 500
_WORST = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


class Expr:
    """A parsed expression: ``inputs`` (signal names, in order of first use) and ``evaluate``,
    which takes their values in that order. ZeroDivisionError on a division by zero."""

    __slots__ = ("text", "inputs", "_fn")

    def __init__(self, text: str, inputs: tuple[str, ...], fn: Callable[[Sequence[float]], float]):
        self.text = text
        self.inputs = inputs
        self._fn = fn

    def evaluate(self, values: Sequence[float]) -> float:
        return self._fn(values)


def parse_expr(text: str) -> Expr:
    """``text`` parsed and compiled; ValueError (one line) naming what is not allowed."""
    if len(text) > _MAX_EXPR:
        raise ValueError(f"expression longer than {_MAX_EXPR} characters")
    inputs: list[str] = []

    def placeholder(m: re.Match) -> str:
        name = m.group(1)
        if name not in inputs:
            inputs.append(name)
        return f"_s{inputs.index(name)}"

    source = _SIGNAL_REF.sub(placeholder, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, ValueError):
        raise ValueError(f"{text!r} is not an arithmetic expression of signal names and numbers "
                         "(put spaces around '-' and around a '/' that divides)") from None
    try:
        fn = _compile(tree.body, len(inputs))
    except RecursionError:
        raise ValueError(f"{text!r} is nested too deeply") from None
    if not inputs:
        raise ValueError(f"{text!r} names no signal")
    return Expr(text, tuple(inputs), fn)


def _compile(node: ast.AST, n_inputs: int) -> Callable[[Sequence[float]], float]:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = float(node.value)
        return lambda env: value
    if isinstance(node, ast.Name) and re.fullmatch(r"_s\d+", node.id) and int(node.id[2:]) < n_inputs:
        index = int(node.id[2:])
        return lambda env: env[index]
    if isinstance(node, ast.Name):
        raise ValueError(f"{node.id!r} is not a signal: write <line>/<station>/<name> in full "
                         "(and put spaces around '-' and around a '/' that divides)")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _compile(node.operand, n_inputs)
        return (lambda env: -operand(env)) if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _compile(node.left, n_inputs), _compile(node.right, n_inputs)
        op = node.op
        if isinstance(op, ast.Add):
            return lambda env: left(env) + right(env)
        if isinstance(op, ast.Sub):
            return lambda env: left(env) - right(env)
        if isinstance(op, ast.Mult):
            return lambda env: left(env) * right(env)
        return lambda env: left(env) / right(env)
    what = type(getattr(node, "op", node)).__name__
    raise ValueError(f"only numbers, signal names, + - * / and parentheses are allowed, not {what}")


class DerivedSignal(Strict):
    """One entry of ``derived:``: the signal it defines and the expression that computes it."""

    signal: Annotated[str, Field(min_length=1)]
    expr: Annotated[str, Field(min_length=1)]

    @field_validator("expr")
    @classmethod
    def _parses(cls, v: str) -> str:
        parse_expr(v)
        return v

    @property
    def inputs(self) -> tuple[str, ...]:
        return parse_expr(self.expr).inputs


def check_derived(derived: Sequence[DerivedSignal], known: set[str], kinds: Callable[[str], str],
                  fed: set[str]) -> list[tuple[tuple, str]]:
    """Problems as (field location, message): unknown or text signals, inputs of another station
    or meter, a derived signal used as an input, defined twice, or also fed by a mapping entry
    (``fed``: the fixed signals the entries name). ``kinds(signal)`` is ``signal_kind``."""
    problems: list[tuple[tuple, str]] = []
    outputs = [d.signal for d in derived]
    for i, d in enumerate(derived):
        loc = ("derived", i)
        if d.signal not in known:
            problems.append(((*loc, "signal"), f"unknown signal {d.signal!r}"))
            continue
        if kinds(d.signal) not in ("counter", "gauge"):
            problems.append(((*loc, "signal"), f"{d.signal} is text; only numeric signals can be derived"))
        if outputs.count(d.signal) > 1:
            problems.append(((*loc, "signal"), f"{d.signal} is derived more than once"))
        if d.signal in fed:
            problems.append(((*loc, "signal"), f"{d.signal} is also fed by a mapping entry; derive it or feed it"))
        station = d.signal.rsplit("/", 1)[0]
        for name in d.inputs:
            if name not in known:
                problems.append(((*loc, "expr"), f"unknown signal {name!r} in {d.expr!r}"))
            elif name.rsplit("/", 1)[0] != station:
                problems.append(((*loc, "expr"), f"{name} is not a signal of {station}: a derived signal "
                                                 f"uses signals of its own station or meter only"))
            elif kinds(name) not in ("counter", "gauge"):
                problems.append(((*loc, "expr"), f"{name} is text, not a number"))
            elif name in outputs:
                problems.append(((*loc, "expr"), f"{name} is itself derived; derive from measured signals"))
    return problems


class DerivedEngine:
    """The latest value of every input and the derived Samples each new input makes.

    ``on_sample(sample)`` returns (derived Samples, rejections as (reason, detail)); ``fanout`` how
    many derived signals a signal feeds (an upper bound on the Samples one input can add)."""

    def __init__(self, derived: Iterable[DerivedSignal]):
        self._defs = [(d.signal, parse_expr(d.expr)) for d in derived]
        self._users: dict[str, list[int]] = {}
        for k, (_, expr) in enumerate(self._defs):
            for name in expr.inputs:
                self._users.setdefault(name, []).append(k)
        self._latest: dict[str, Sample] = {}
        # derived signal -> (its inputs' latest time, value, ts) of the last Sample sent
        self._emitted: dict[str, tuple[float, float, float]] = {}

    def fanout(self, signal: str) -> int:
        return len(self._users.get(signal, ()))

    def outputs_of(self, signals: Iterable[str]) -> set[str]:
        """The derived signals any of ``signals`` feeds."""
        return {self._defs[k][0] for s in signals for k in self._users.get(s, ())}

    def on_sample(self, sample: Sample) -> tuple[list[Sample], list[tuple[str, str]]]:
        users = self._users.get(sample.signal)
        if not users or isinstance(sample.value, str):
            return [], []
        prev = self._latest.get(sample.signal)
        if prev is not None and sample.ts < prev.ts:
            return [], []  # a late reading of an input: the latest one stands
        self._latest[sample.signal] = sample
        out: list[Sample] = []
        rejected: list[tuple[str, str]] = []
        for k in users:
            signal, expr = self._defs[k]
            inputs = [self._latest.get(name) for name in expr.inputs]
            if any(s is None for s in inputs):
                continue
            newest = max(inputs, key=lambda s: s.ts)
            quality = max((s.quality for s in inputs), key=_WORST.__getitem__)
            try:
                value = expr.evaluate([float(s.value) for s in inputs])
            except ZeroDivisionError:
                rejected.append(("division_by_zero", f"{signal} = {expr.text}: division by zero at {newest.ts}"))
                continue
            if quality is Quality.BAD:
                value = math.nan
            elif not math.isfinite(value):
                rejected.append(("not_finite", f"{signal} = {expr.text} is {value} at {newest.ts}"))
                continue
            ts = newest.ts
            last = self._emitted.get(signal)
            if last is not None and ts <= last[0]:
                if value == last[1] or math.isnan(value) and math.isnan(last[1]):
                    continue  # nothing new at this instant
                ts = last[2] + 1e-6
            self._emitted[signal] = (newest.ts, value, ts)
            out.append(Sample(signal, value, ts, quality, newest.ts_kind))
        return out, rejected


class DerivedQueue:
    """The twin's queue as one source sees it: each Sample put goes on, followed by the derived
    Samples it makes. ``put_nowait`` puts all or nothing (QueueFull before anything is queued), so a
    source that holds a Sample back on QueueFull and retries never sends it twice."""

    def __init__(self, queue: asyncio.Queue, engine: DerivedEngine, on_reject: Callable[[str, str], None],
                 on_derived: Callable[[int], None]):
        self._queue = queue
        self._engine = engine
        self._on_reject = on_reject
        self._on_derived = on_derived

    def _derive(self, sample: Sample) -> list[Sample]:
        out, rejected = self._engine.on_sample(sample)
        for reason, detail in rejected:
            self._on_reject(reason, detail)
        if out:
            self._on_derived(len(out))
        return out

    def put_nowait(self, sample: Sample) -> None:
        q = self._queue
        n = self._engine.fanout(sample.signal)
        if q.maxsize > 0 and q.qsize() + 1 + n > q.maxsize:
            raise asyncio.QueueFull
        q.put_nowait(sample)
        if n:
            for d in self._derive(sample):
                q.put_nowait(d)

    async def put(self, sample: Sample) -> None:
        await self._queue.put(sample)
        if self._engine.fanout(sample.signal):
            for d in self._derive(sample):
                await self._queue.put(d)

    def __getattr__(self, name):  # qsize, full, empty, maxsize ...: the real queue's
        return getattr(self._queue, name)


class DerivedSource:
    """A Source whose Samples feed the shared DerivedEngine on their way to the twin; everything
    else (name, config, stats, signals) is the wrapped source's. ``stats()`` adds the derived
    Samples it sent (``derived_samples``) and counts derived rejections with its own."""

    def __init__(self, inner, engine: DerivedEngine):
        self.inner = inner
        self.name = inner.name
        self._engine = engine
        self._rejected: Counter[str] = Counter()
        self._derived = 0

    def _reject(self, reason: str, detail: str) -> None:
        self._rejected[reason] += 1
        stats = getattr(self.inner, "_stats", None)
        if stats is not None and hasattr(stats, "reject"):
            stats.reject(reason, detail, where=detail.split(" ", 1)[0])  # counted, logged, dead-lettered there

    def _count(self, n: int) -> None:
        self._derived += n

    async def run(self, out: asyncio.Queue) -> None:
        await self.inner.run(DerivedQueue(out, self._engine, self._reject, self._count))

    def stats(self) -> dict:
        d = dict(self.inner.stats())
        if getattr(self.inner, "_stats", None) is None and self._rejected:
            by_reason = dict(d.get("rejected_by_reason", {}))
            for reason, n in self._rejected.items():
                by_reason[reason] = by_reason.get(reason, 0) + n
            d["rejected_by_reason"] = by_reason
            d["rejected"] = sum(by_reason.values())
        d["derived_samples"] = self._derived
        return d

    def signals(self) -> set[str]:
        own = set(self.inner.signals())
        return own | self._engine.outputs_of(own)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def with_derived(sources: list, derived: Sequence[DerivedSignal]) -> list:
    """``sources`` wrapped to feed one DerivedEngine; unchanged when there is nothing to derive."""
    if not derived:
        return sources
    engine = DerivedEngine(derived)
    return [DerivedSource(src, engine) for src in sources]
