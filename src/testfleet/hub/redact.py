"""Keep credentials out of the server's log: uvicorn logs each WebSocket's path with its query
string, and developer mode's socket takes a `token` query parameter (browsers cannot set
headers on a WebSocket)."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with the value of every `token=` query parameter replaced."""
    return _TOKEN.sub(r"\1[redacted]", text)


class TokenRedactor(logging.Filter):
    """Rewrites `token=` query values in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact, and let the record through."""
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install(*loggers: str) -> None:
    """Redact tokens in what these loggers log (once per logger)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedactor) for f in logger.filters):
            logger.addFilter(TokenRedactor())
