"""The package's checks of numeric arguments: one line naming the argument, whatever the caller."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Callable

from nas.errors import NasError


def check_integer(name: str, value: Any, minimum: int, types: type | tuple[type, ...] = Integral) -> None:
    """`value` is an integer (not a bool) >= minimum. `types`: `int` where the value goes into a JSON file
    (numpy's integers are Integral, but json cannot write them)."""
    if isinstance(value, bool) or not isinstance(value, types) or value < minimum:
        raise NasError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def check_number(
    name: str,
    value: Any,
    ok: Callable[[float], bool],
    what: str,
    hint: str = "",
    types: type | tuple[type, ...] = Real,
) -> None:
    """`value` is a finite number (not a bool) for which `ok` holds; `what` says which, `hint` what else is
    accepted. `types`: see `check_integer`."""
    if isinstance(value, bool) or not isinstance(value, types) or not math.isfinite(value) or not ok(value):
        raise NasError(f"{name}: must be {what}, got {value!r}{hint}")
