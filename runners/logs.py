"""Logging for the jobs and the command line: the standard `logging` module, as text or JSON lines.

    shiftstream --log-format json --log-level debug run ...

Progress and warnings go to stderr through the `shiftstream` logger; results (summaries, JSON a command prints)
stay on stdout. Libraries that talk too much (librdkafka through confluent-kafka, py4j) are kept at ERROR
unless the level is debug."""
from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = ("debug", "info", "warning", "error")


class JsonLines(logging.Formatter):
    """One JSON object a line: time (ms), level, logger, message, the record's `fields` (a dict passed as
    `extra={"fields": {...}}`), and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": int(record.created * 1000), "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


class Text(logging.Formatter):
    """`shiftstream: message`, with the level named when it is not info."""

    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno == logging.INFO else record.levelname.lower() + ": "
        text = f"shiftstream: {level}{record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def configure(fmt: str = "text", level: str = "info") -> None:
    """Route the root logger to stderr in the chosen format (idempotent: replaces our own handler)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_shiftstream", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._shiftstream = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonLines() if fmt == "json" else Text())
    root.addHandler(handler)
    lvl = getattr(logging, level.upper())
    logging.getLogger("shiftstream").setLevel(lvl)
    root.setLevel(logging.WARNING if lvl > logging.DEBUG else logging.DEBUG)
    quiet = logging.DEBUG if lvl <= logging.DEBUG else logging.CRITICAL
    for noisy in ("py4j", "kafka", "shiftstream.kafka"):
        logging.getLogger(noisy).setLevel(quiet)
    logging.Formatter.converter = time.gmtime


def get(name: str) -> logging.Logger:
    """The logger for one part of the project (`shiftstream.<name>`)."""
    return logging.getLogger(f"shiftstream.{name}")
