"""A live service for the flow tests: uvicorn on a free port in a background thread, and what it leaves behind."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text

BACKENDS = ["sqlite", "postgres"]


@contextmanager
def live_server(app: FastAPI, *, start_timeout_s: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL; stops it after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", server_header=False, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="palmid-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if thread.is_alive():
            raise RuntimeError("the live server did not stop")


def database_dump(url: str) -> bytes:
    """Every value of every row of every table, as bytes (to scan for leaked images or templates)."""
    engine = create_engine(url)
    chunks: list[bytes] = []
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, bytes | bytearray | memoryview):
                            chunks.append(bytes(value))
                        elif value is not None:
                            chunks.append(str(value).encode("utf-8", "replace"))
    finally:
        engine.dispose()
    return b"\x00".join(chunks)


def folder_bytes(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def windows(data: bytes, *, size: int = 48, count: int = 6) -> list[bytes]:
    """A few distinctive slices from the middle of ``data`` (headers are shared by every JPEG)."""
    start = len(data) // 4
    step = max(size, (len(data) // 2) // count)
    return [
        data[start + i * step : start + i * step + size] for i in range(count) if start + i * step + size <= len(data)
    ]
