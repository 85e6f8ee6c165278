from __future__ import annotations

import json
import logging

import pytest

from palmid.logs import JsonLinesFormatter, configure_logging


def test_json_lines_have_fields_and_extras() -> None:
    record = logging.makeLogRecord({"name": "palmid.test", "levelname": "INFO", "msg": "hello %s", "args": ("you",)})
    record.request_id = "abc"
    entry = json.loads(JsonLinesFormatter().format(record))
    assert entry["message"] == "hello you"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "abc"
    assert entry["time"].endswith("Z")


def test_configure_logging_json(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(log_format="json", level="INFO")
        logging.getLogger("palmid.x").info("started", extra={"port": 8000})
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert json.loads(line)["port"] == 8000
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
