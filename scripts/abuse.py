#!/usr/bin/env python3
"""Run the reliability and abuse suites (tests/abuse, issue 7) in their LONG versions, or any bounded subset.

CI runs the same suites with small bounds (pytest -m abuse). This entry raises the bounds and prints the figures:

    python scripts/abuse.py --suite crash --kills 100 --postgres     # >= 100 kill -9 per backend
    python scripts/abuse.py --suite fuzz --examples 500
    python scripts/abuse.py --suite concurrency --clients 50 --seconds 120
    python scripts/abuse.py --suite all --report-dir abuse-report       # every suite, long bounds, JSON figures

``--postgres`` starts a throw-away PostgreSQL server with scripts/ci_postgres.sh (and stops it afterwards) unless
PALMID_TEST_POSTGRES_URL is already set; without it the PostgreSQL variant of the crash suite is skipped.
"""

from __future__ import annotations

# ruff: noqa: S603, S607  (runs pytest and the repository's own ci_postgres.sh with fixed arguments)
import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = {
    "fuzz": "tests/abuse/test_fuzz_api.py",
    "hostile": "tests/abuse/test_hostile_images.py",
    "crash": "tests/abuse/test_crash_consistency.py",
    "concurrency": "tests/abuse/test_concurrency.py",
    "authz": "tests/abuse/test_authorization.py",
    "leakage": "tests/abuse/test_score_leakage.py",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=[*SUITES, "all"], default="all", help="which suite (default: all)")
    parser.add_argument("--kills", type=int, default=100, help="kill -9 rounds per backend (crash; CI: 10)")
    parser.add_argument("--crash-palms", type=int, default=12, help="palms cycled through enroll/erase (crash)")
    parser.add_argument("--examples", type=int, default=300, help="examples per operation and mode (fuzz; CI: 25)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (concurrency)")
    parser.add_argument("--seconds", type=float, default=120.0, help="load duration (concurrency; CI: 20)")
    parser.add_argument("--leak-group", type=int, default=12, help="impostors per timing group (leakage; CI: 8)")
    parser.add_argument("--leak-repeats", type=int, default=6, help="repeats per impostor (leakage; CI: 3)")
    parser.add_argument("--postgres", action="store_true", help="start a throw-away PostgreSQL for the crash suite")
    parser.add_argument("--report-dir", type=Path, default=None, help="write each suite's figures as JSON here")
    parser.add_argument("--timeout-s", type=int, default=6 * 3600, help="per-test timeout")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return parser.parse_args(argv)


def start_postgres(env: dict[str, str]) -> str | None:
    """Start scripts/ci_postgres.sh; put its exports in ``env``; return the cluster dir to stop later."""
    if env.get("PALMID_TEST_POSTGRES_URL"):
        return None
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ci_postgres.sh"), "start"], capture_output=True, text=True, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = shlex.split(value)[0] if value else ""
    return env.get("PALMID_PG_DIR")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    env.update(
        {
            "PALMID_ABUSE_KILLS": str(args.kills),
            "PALMID_ABUSE_CRASH_PALMS": str(args.crash_palms),
            "PALMID_ABUSE_FUZZ_EXAMPLES": str(args.examples),
            "PALMID_ABUSE_CLIENTS": str(args.clients),
            "PALMID_ABUSE_CONCURRENCY_S": str(args.seconds),
            "PALMID_ABUSE_LEAK_GROUP": str(args.leak_group),
            "PALMID_ABUSE_LEAK_REPEATS": str(args.leak_repeats),
            "PALMID_ABUSE_TIMEOUT_S": str(args.timeout_s),
        }
    )
    if args.report_dir is not None:
        env["PALMID_ABUSE_REPORT_DIR"] = str(args.report_dir.resolve())
    files = list(SUITES.values()) if args.suite == "all" else [SUITES[args.suite]]
    pg_dir = start_postgres(env) if args.postgres and args.suite in {"crash", "all"} else None
    command = [sys.executable, "-m", "pytest", *files, "-m", "abuse", "-s", "-p", "no:cacheprovider", *args.pytest_args]
    try:
        return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    finally:
        if pg_dir:
            subprocess.run(["bash", str(ROOT / "scripts" / "ci_postgres.sh"), "stop", pg_dir], check=False)


if __name__ == "__main__":
    sys.exit(main())
