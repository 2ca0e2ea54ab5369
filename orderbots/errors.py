"""The one exception hierarchy of orderbots.

Connectors translate library exceptions at their boundary
(``raise ApplicationError(...) from exc``); the work-item machinery decides what
happens to an item from the class alone:

- ``BusinessError``: bad data. Never retried. ``severity`` is ``hold`` (a person
  reviews) or ``reject`` (the customer is told why); ``code`` names the reason.
- ``ApplicationError``: the outside world failed (timeout, 5xx, element not
  found, lost session). Retried with backoff, then ``failed``.
- ``ConfigError``: a file the operator wrote is wrong; stops start-up with the
  file, line and reason in the message.
- ``InputError``: an input file or message cannot be read at all; it is moved
  aside with the message as the reason.

Messages never contain secrets.
"""


class OrderbotsError(Exception):
    """Base class of every error orderbots raises on purpose."""


class ConfigError(OrderbotsError):
    """A configuration file is malformed; the message names file, line and reason."""


class InputError(OrderbotsError):
    """An input (file, email, portal page) cannot be read; the message says why and what to do."""


class BusinessError(OrderbotsError):
    """The order's data is wrong: a person must look (``hold``) or the customer is told (``reject``)."""

    def __init__(self, message: str, *, code: str = "business", severity: str = "hold"):
        super().__init__(message)
        if severity not in ("hold", "reject"):
            raise ValueError(f"severity must be hold or reject, not {severity!r}")
        self.code = code
        self.severity = severity


class ApplicationError(OrderbotsError):
    """A transient failure of an outside system; the step is retried with backoff."""
