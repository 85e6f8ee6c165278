"""Shared harness for the abuse suites: a real ``palmid serve`` subprocess, its tenants, its memory, kill -9.

The server runs exactly as an operator runs it (``python -m palmid serve --port P --data-dir D``) with the
database URL in ``PALMID_DATABASE_URL``; tenants are created with ``palmid tenants create ... --data-dir D``.
Everything lives under the test's ``tmp_path``; the server listens on loopback only.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from palmid_testdata import dataset_dir, postgres_schema_url

ALL_SCOPES = ("enroll", "identify", "verify", "erase")
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_int(name: str, default: int) -> int:
    """A bound from the environment (the long versions raise them through scripts/abuse.py)."""
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


# --------------------------------------------------------------------------------------------------- databases


@contextmanager
def database_for(backend: str, data_dir: Path) -> Iterator[str]:
    """A database URL for ``backend``: a SQLite file in ``data_dir`` or a fresh PostgreSQL schema (dropped after)."""
    if backend == "sqlite":
        data_dir.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{data_dir / 'palmid.db'}"
        return
    with postgres_schema_url(prefix="abuse") as url:
        yield url


# ------------------------------------------------------------------------------------------------------ server


@dataclass
class ServerProcess:
    """One ``palmid serve`` subprocess over ``data_dir`` and ``database_url``; restartable after a kill."""

    data_dir: Path
    database_url: str
    settings_env: Mapping[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("server not running")
        return self.process.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PALMID_") or k == "PALMID_SHARED_DATA_DIR"}
        env.update(
            {
                "PALMID_DATA_DIR": str(self.data_dir),
                "PALMID_DATABASE_URL": self.database_url,
                "PALMID_LOG_LEVEL": "WARNING",
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.settings_env)
        return env

    def palmid(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a ``palmid`` CLI verb against the same data folder and database."""
        return subprocess.run(
            [sys.executable, "-m", "palmid", *args, "--data-dir", str(self.data_dir)],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def create_tenant(self, name: str, scopes: tuple[str, ...] = ALL_SCOPES) -> str:
        """``palmid tenants create NAME --scopes ...``: the API key printed once on stdout."""
        done = self.palmid("tenants", "create", name, "--scopes", ",".join(scopes))
        key = done.stdout.strip()
        if not key or "\n" in key:
            raise RuntimeError(f"unexpected `tenants create` output: {done.stdout!r} {done.stderr!r}")
        return key

    def key_id_of(self, name: str) -> str:
        listing = self.palmid("tenants", "list").stdout.splitlines()[1:]
        for line in listing:
            columns = line.split("\t")
            if columns[1] == name and columns[-1] == "active":
                return columns[0]
        raise KeyError(name)

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        return self.palmid("audit", "verify", check=False)

    def start(self) -> None:
        """Start (or restart) the server on a fresh free port and wait for /healthz."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("server already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.starts += 1
        self.log_path = self.data_dir.parent / f"server-{self.starts}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "palmid", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_healthy()

    def wait_healthy(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"server exited during start-up:\n{self.log_tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout_s} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=10).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no rollback by the service itself."""
        if self.process is None:
            return
        with suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL if it hangs)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self.process = None

    def memory_kib(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the server process in KiB, from /proc/<pid>/status."""
        values: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                values[name] = int(rest.split()[0])
        return values["VmRSS"], values["VmHWM"]

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        texts = []
        for index in range(1, self.starts + 1):
            path = self.data_dir.parent / f"server-{index}.log"
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)


@contextmanager
def running_server(
    tmp_path: Path, *, backend: str = "sqlite", settings_env: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """A started server (fresh data folder and database); always stopped afterwards."""
    data_dir = tmp_path / "data"
    with database_for(backend, data_dir) as url:
        server = ServerProcess(data_dir=data_dir, database_url=url, settings_env=dict(settings_env or {}))
        try:
            server.start()
            yield server
        finally:
            server.stop()


# ------------------------------------------------------------------------------------------------ the merchant


def consent_json() -> str:
    from palmid.kiosk import NOTICE_PURPOSES, NOTICE_VERSION

    return json.dumps(
        {
            "notice_version": NOTICE_VERSION,
            "purposes": list(NOTICE_PURPOSES[:2]),
            "accepted_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    )


class Merchant:
    """A merchant's calls over any httpx client (one per thread: httpx.Client is thread-safe for requests)."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def enroll(self, photos: list[bytes] | tuple[bytes, ...], *, consent: str | None = None) -> httpx.Response:
        files = [("images", (f"palm{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
        return self.client.post(
            "/v1/enrollments", files=files, data={"consent": consent or consent_json()}, headers=self.headers
        )

    def identify(
        self, image: bytes, *, content_type: str = "image/jpeg", filename: str = "probe.jpg"
    ) -> httpx.Response:
        files = {"image": (filename, image, content_type)}
        return self.client.post("/v1/identifications", files=files, headers=self.headers)

    def verify(self, image: bytes, subject_ref: str) -> httpx.Response:
        files = {"image": ("probe.jpg", image, "image/jpeg")}
        return self.client.post(
            "/v1/verifications", files=files, data={"subject_ref": subject_ref}, headers=self.headers
        )

    def erase(self, subject_ref: str) -> httpx.Response:
        return self.client.delete(f"/v1/subjects/{subject_ref}", headers=self.headers)


# ------------------------------------------------------------------------------------------------- real photos


@dataclass(frozen=True)
class Palm:
    palm_id: str
    photos: tuple[bytes, ...]


def coep_palms(count: int, *, min_photos: int = 4, photos_per_palm: int = 4) -> list[Palm]:
    """``count`` COEP palms (sorted by id) with their first ``photos_per_palm`` photos (skips without the data)."""
    folder = dataset_dir("coep")
    by_palm: dict[str, list[Path]] = {}
    with (folder / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_palm.setdefault(row["palm_id"], []).append(folder / row["path"])
    chosen = [palm for palm, paths in sorted(by_palm.items()) if len(paths) >= min_photos][:count]
    if len(chosen) < count:
        raise RuntimeError(f"COEP has only {len(chosen)} palms with {min_photos} photos")
    return [Palm(palm, tuple(path.read_bytes() for path in sorted(by_palm[palm])[:photos_per_palm])) for palm in chosen]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def write_report(name: str, payload: Mapping[str, object]) -> None:
    """Print a figure block (visible with ``pytest -s``) and, with PALMID_ABUSE_REPORT_DIR set, save it as JSON."""
    text_payload = json.dumps(payload, indent=2, sort_keys=True, default=str)
    print(f"\n[abuse:{name}] {text_payload}")
    folder = os.environ.get("PALMID_ABUSE_REPORT_DIR", "")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(text_payload + "\n")
