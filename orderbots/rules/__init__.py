"""The rules engine: rule files in ``rules/*.yaml`` compiled once, evaluated against every order.

- ``load_rules(directory) -> RuleSet`` reads and compiles the rule files
  (``ConfigError`` with file:line for anything malformed); see ``loader``.
- ``RuleSet.evaluate(order, RuleContext(...)) -> list[Finding]``; see ``engine``.
- ``@rule("name")`` registers a custom rule kind that rule files can name; see ``registry``.
- The built-in kinds are in ``builtin``.
"""

from . import builtin  # noqa: F401 - registers the built-in kinds
from .engine import Exposure, Rule, RuleContext, RuleSet
from .loader import load_rule_file, load_rules
from .registry import Hit, kind_names, rule

__all__ = ["Exposure", "Hit", "Rule", "RuleContext", "RuleSet", "kind_names", "load_rule_file", "load_rules", "rule"]
