"""Fault injection settings of the sandbox: what goes wrong, and how often.

``Faults`` holds the rates (shares between 0 and 1) and seconds. It is built
from the ``ORDERBOTS_SANDBOX_FAULTS`` string (``latency=0.2,error_rate=0.05``),
from CLI flags, or from the JSON body of ``POST /_admin/faults``; a bad key or
value raises ``ValueError`` naming it. ``hit(rate)`` rolls the dice.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields

RATES = ("error_rate", "drop_session", "slow_rate", "ghost_submit")
SECONDS = ("latency", "slow_seconds")


@dataclass
class Faults:
    latency: float = 0.0
    error_rate: float = 0.0
    drop_session: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 8.0
    ghost_submit: float = 0.0

    @classmethod
    def from_mapping(cls, values: dict) -> "Faults":
        """Faults from ``{key: number}``; unknown keys and out-of-range values are ``ValueError``."""
        known = {f.name for f in fields(cls)}
        result = cls()
        for key, raw in values.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known faults: {', '.join(sorted(known))}")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ValueError(f"fault {key!r}: {raw!r} is not a number") from None
            if not math.isfinite(value) or value < 0 or (key in RATES and value > 1):
                limit = "a share between 0 and 1" if key in RATES else "seconds >= 0"
                raise ValueError(f"fault {key!r}: {raw!r} must be {limit}")
            setattr(result, key, value)
        return result

    @classmethod
    def parse(cls, text: str) -> "Faults":
        """Faults from ``"key=value,key=value"`` (the ``ORDERBOTS_SANDBOX_FAULTS`` format)."""
        values = {}
        for part in filter(None, (p.strip() for p in (text or "").split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault setting {part!r} must look like key=value")
            values[key.strip()] = value.strip()
        return cls.from_mapping(values)

    def merged(self, overrides: dict) -> "Faults":
        """A copy with the non-``None`` ``overrides`` applied (and checked)."""
        return Faults.from_mapping({**asdict(self), **{k: v for k, v in overrides.items() if v is not None}})

    def as_dict(self) -> dict:
        return asdict(self)


def hit(rate: float) -> bool:
    """True with probability ``rate`` (never for 0, always for 1)."""
    return rate > 0 and random.random() < rate
