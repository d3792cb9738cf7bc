"""Logging for workflow scripts: everything goes to the rule's ``log:`` file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def log_to(path: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send log records (and uncaught exceptions) to ``path`` and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    logger = logging.getLogger("diffscale")

    def excepthook(kind, value, tb):
        logger.error("failed: %s", value, exc_info=(kind, value, tb))

    sys.excepthook = excepthook
    return logger
