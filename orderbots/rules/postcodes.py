"""Postcode formats per country (ISO 3166 alpha-2), as anchored regular expressions.

Postcodes are compared upper-cased with surrounding spaces removed. Rule files
can override or add countries through the ``postcode`` kind's ``countries`` param.
"""

from __future__ import annotations

import re

PATTERNS = {
    # Royal Mail format incl. GIR 0AA; the space is optional.
    "GB": r"GIR ?0AA|[A-PR-UWYZ](?:[0-9][0-9A-HJKPS-UW]?|[A-HK-Y][0-9][0-9ABEHMNPRV-Y]?) ?[0-9][ABD-HJLNP-UW-Z]{2}",
    "US": r"[0-9]{5}(?:-[0-9]{4})?",
    "DE": r"[0-9]{5}",
    "FR": r"(?:0[1-9]|[1-8][0-9]|9[0-8])[0-9]{3}",
    "FI": r"[0-9]{5}",
    # Province codes 01-52.
    "ES": r"(?:0[1-9]|[1-4][0-9]|5[0-2])[0-9]{3}",
    "CN": r"[0-9]{6}",
    # Four digits not starting with 0, two letters except SA, SD, SS.
    "NL": r"[1-9][0-9]{3} ?(?!SA|SD|SS)[A-Z]{2}",
    "IT": r"[0-9]{5}",
    "SE": r"[0-9]{3} ?[0-9]{2}",
    "AT": r"[1-9][0-9]{3}",
    "BE": r"[1-9][0-9]{3}",
    "CH": r"[1-9][0-9]{3}",
}


def compile_patterns(overrides: dict[str, str] | None = None) -> dict[str, re.Pattern]:
    """The built-in patterns with ``overrides`` applied; ``ValueError`` for a bad country or regex."""
    table = dict(PATTERNS)
    for country, pattern in (overrides or {}).items():
        if not (isinstance(country, str) and len(country) == 2 and country.isalpha() and country.isupper()):
            raise ValueError(f"country {country!r} must be an ISO 3166 alpha-2 code like 'GB'")
        if not isinstance(pattern, str):
            raise ValueError(f"pattern for {country} must be a string")
        table[country] = pattern
    compiled = {}
    for country, pattern in table.items():
        try:
            compiled[country] = re.compile(f"(?:{pattern})")
        except re.error as exc:
            raise ValueError(f"pattern for {country} is not a valid regular expression: {exc}") from exc
    return compiled
