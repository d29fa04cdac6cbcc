"""The one rule for "is this a number we can learn from, rank by or store as a value".

Metrics arrive from user code, Ray results, NumPy and torch: `finite` turns any of them
into a plain float, or None for what is not a finite real number (None, NaN, ±inf, a bool,
a string, an array of more than one element). Samplers, the driver's recorder, the
repository and the reproduce path all use it, so a value one of them learns from is a
value the others store and rank.
"""

from __future__ import annotations

import math


def finite(value: object) -> float | None:
    """`value` as a float if it is a finite real number (int, float, or a NumPy / torch
    scalar), else None.

        >>> finite(3), finite(float("nan")), finite(True), finite("1.5")
        (3.0, None, None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int | float):
        item = getattr(value, "item", None)  # NumPy and torch scalars
        if not callable(item):
            return None
        try:
            value = item()
        except (TypeError, ValueError, RuntimeError):  # an array of several elements
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
    number = float(value)
    return number if math.isfinite(number) else None
