"""The choices of :mod:`elim.ot` and the parameter checks of the numerical API.

``Solver`` and ``Grad`` are the choice sets of an OT solve, declared once here and reused by
:mod:`elim.matching`, :mod:`elim.config` and the command line (through ``typing.get_args``).

:class:`Bounds` states the allowed range of one numeric parameter and checks a value against it;
:func:`check_choice` does the same for a choice. Both raise :class:`ParameterError`, whose
message names the parameter and its allowed values, e.g. ``eps must be a finite number > 0
(cost units), got -1``. They are shared by :mod:`elim.ot`, :mod:`elim.matching` and
:mod:`elim.config` (the lowest layer that all three import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal, get_args, get_origin

from elim.errors import ElimError

__all__ = ["Bounds", "Grad", "ParameterError", "Solver", "check_choice", "choices_of"]

#: OT solvers: entropic Sinkhorn, network simplex (exact LP optimum), ridge-regularised QP (qpth).
Solver = Literal["sinkhorn", "exact", "qp"]
#: Gradient through the plan: ``"detach"`` (a constant plan) or ``"autodiff"`` (unrolled, QP).
Grad = Literal["detach", "autodiff"]


class ParameterError(ElimError, ValueError):
    """A parameter is of the wrong type or out of range; ``name`` is the parameter.

    An :class:`~elim.errors.ElimError` (the CLI prints it as one line, exit 2) and a
    ``ValueError`` (as numerical libraries raise for bad arguments).
    """

    def __init__(self, name: str, requirement: str, value: Any) -> None:
        super().__init__(f"{name} must be {requirement}, got {value!r}")
        self.name = name


def choices_of(choices: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` type, or of any iterable of values, as a tuple."""
    if get_origin(choices) is Literal:
        return get_args(choices)
    return tuple(choices)


def check_choice(name: str, value: Any, choices: Any) -> Any:
    """``value`` when it is one of ``choices`` (a ``Literal`` type or an iterable), else raise."""
    allowed = choices_of(choices)
    if isinstance(value, str) and value in allowed:
        return value
    raise ParameterError(name, "one of " + ", ".join(map(repr, allowed)), value)


def _number(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Bounds:
    """Allowed range of a numeric parameter: ``gt`` < x, ``ge`` <= x, x < ``lt``, x <= ``le``.

    ``integer=True`` accepts integral values only (ints, or floats such as ``100.0``); the value
    must be finite and not a bool. ``unit`` is appended to the range in messages (e.g.
    ``"(cost units)"``). ``optional=True`` also accepts ``None``.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    integer: bool = False
    optional: bool = False
    unit: str = ""

    def describe(self) -> str:
        """The requirement in words, e.g. ``"a finite number in [0, 1)"``, ``"an integer >= 1"``."""
        kind = "an integer" if self.integer else "a finite number"
        low = ("(", self.gt) if self.gt is not None else ("[", self.ge)
        high = (")", self.lt) if self.lt is not None else ("]", self.le)
        if low[1] is not None and high[1] is not None:
            text = f"{kind} in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
        elif low[1] is not None:
            text = f"{kind} {'>' if low[0] == '(' else '>='} {_number(low[1])}"
        elif high[1] is not None:
            text = f"{kind} {'<' if high[0] == ')' else '<='} {_number(high[1])}"
        else:
            text = kind
        if self.unit:
            text += f" {self.unit}"
        return text + (" or None" if self.optional else "")

    def contains(self, x: float) -> bool:
        """Whether the finite number ``x`` lies in the range."""
        return not (
            (self.gt is not None and not x > self.gt)
            or (self.ge is not None and not x >= self.ge)
            or (self.lt is not None and not x < self.lt)
            or (self.le is not None and not x <= self.le)
        )

    def check(self, name: str, value: Any) -> Any:
        """``value`` as an ``int`` / ``float`` (``None`` when optional), or raise ParameterError."""
        if value is None and self.optional:
            return None
        ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
        if ok and self.integer:
            ok = isinstance(value, Integral) or float(value).is_integer()
        if not ok or not self.contains(float(value)):
            raise ParameterError(name, self.describe(), value)
        return int(value) if self.integer else float(value)

