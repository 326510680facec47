"""What every command prints with: JSON that is always valid (a NaN or an infinity is shown as "non-finite",
never as the bare NaN that JSON does not allow) and numbers in text likewise."""
from __future__ import annotations

import json
import math
from typing import Any

from vaezoo.runtime.finite import NON_FINITE, mark_nonfinite


def print_json(data: Any) -> None:
    print(json.dumps(mark_nonfinite(data)[0], indent=2, default=str, allow_nan=False))


def number(value: float, spec: str) -> str:
    """`value` formatted with `spec`, or "non-finite" for a NaN or an infinity."""
    return format(value, spec) if math.isfinite(value) else NON_FINITE
