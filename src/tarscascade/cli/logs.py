"""Logging for the long-running commands: ``--log-level`` and ``--log-format text|json``.

JSON is one object per line (``ts``, ``level``, ``logger``, ``msg``, plus the record's
``event`` and any extra fields the code attached), for log shippers that parse lines;
text is the classic ``time LEVEL logger: message``. Only the standard library: this
runs before anything else is imported.
"""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from typing import Any

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is data.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(level: str, fmt: LogFormat | str = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if LogFormat(fmt) is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log is one line per request: never at INFO in the operator's log
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
