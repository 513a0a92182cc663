"""The claims ledger: the papers' published numbers (``published.yml``, transcribed once) beside what
this book measured, with a verdict computed by a stated rule.

A chapter page registers what it measured with :func:`record` (written to
``results/<chapter>/claims_<page>.csv``); the ledger page gathers every registered row with
:func:`ledger` and lists every published claim, measured or not.
"""
from alignlib.claims.ledger import (RULES, Measurement, ledger, published, published_value, record,
                                    verdict)

__all__ = ["RULES", "Measurement", "ledger", "published", "published_value", "record", "verdict"]
