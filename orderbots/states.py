"""Work-item states and the steps that move items between them (DESIGN.md).

```
received -> validated -> entering_erp -> in_erp -> releasing_wms -> released -> done
          \\-> held | rejected          any step -> retry_wait -> failed
```

A ``Step`` names which states a bot takes work from (``takes``), the state an
item sits in while the step's side effect is under way (``working``, if any:
an expired lease in that state means the outcome is unknown), and where a
person's *approve* sends a held item (``on_approve``).
"""

from __future__ import annotations

from dataclasses import dataclass

RECEIVED, VALIDATED, ENTERING_ERP, IN_ERP = "received", "validated", "entering_erp", "in_erp"
RELEASING_WMS, RELEASED, DONE = "releasing_wms", "released", "done"
HELD, REJECTED, RETRY_WAIT, FAILED = "held", "rejected", "retry_wait", "failed"

STATES = (RECEIVED, VALIDATED, ENTERING_ERP, IN_ERP, RELEASING_WMS, RELEASED, DONE,
          HELD, REJECTED, RETRY_WAIT, FAILED)
TERMINAL = (DONE, REJECTED)
EXCEPTIONS = (HELD, REJECTED, RETRY_WAIT, FAILED)

_FLOW = {
    RECEIVED: {VALIDATED},
    VALIDATED: {ENTERING_ERP, IN_ERP},
    ENTERING_ERP: {IN_ERP},
    IN_ERP: {RELEASING_WMS, RELEASED},
    RELEASING_WMS: {RELEASED},
    RELEASED: {DONE},
    HELD: {RECEIVED, VALIDATED, IN_ERP},
    RETRY_WAIT: {VALIDATED, ENTERING_ERP, IN_ERP, RELEASING_WMS, RELEASED},
    FAILED: set(),
}


def allowed(src: str, dst: str) -> bool:
    """Whether ``src -> dst`` is a legal transition."""
    if src in TERMINAL:
        return False
    if dst in (HELD, REJECTED, RETRY_WAIT, FAILED):
        return src != dst or dst == RETRY_WAIT
    return dst in _FLOW.get(src, set())


@dataclass(frozen=True)
class Step:
    """A unit of bot work over work items. See module docstring."""

    name: str
    takes: tuple[str, ...]
    on_approve: str
    working: str | None = None
    max_attempts: int = 5
    backoff: float = 30.0
    max_backoff: float = 3600.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (exponential, capped)."""
        return min(self.backoff * 2 ** max(attempt - 1, 0), self.max_backoff)


VALIDATE = Step("validate", takes=(RECEIVED,), on_approve=VALIDATED)
ERP_ENTRY = Step("erp_entry", takes=(VALIDATED,), working=ENTERING_ERP, on_approve=VALIDATED)
WMS_RELEASE = Step("wms_release", takes=(IN_ERP,), working=RELEASING_WMS, on_approve=IN_ERP)
STEPS = {s.name: s for s in (VALIDATE, ERP_ENTRY, WMS_RELEASE)}
WORKING = frozenset(s.working for s in STEPS.values() if s.working)  # an outside effect follows a move here
