"""How long a CLI command takes from the shell, start to exit, on the demo store (issue: `govern review
list` under 0.3 s), and which heavy libraries it loads.

Each command runs in a fresh interpreter, as a user's shell runs it: once to warm the OS file cache and
write bytecode (into a private cache folder, as an installed package has it), then --repeat times timed.
The second table is the same with bytecode caching off (PYTHONDONTWRITEBYTECODE, as some sandboxes set it),
where every module is compiled again on each start.

    python benchmarks/cli_start.py [--home STORE] [--repeat 7]

Without --home it builds the demo store (`govern demo`, ~30 s) in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [("review", "list"), ("jobs", "list"), ("model", "list"), ("readiness",), ("status",), ("--help",)]
HEAVY = ("pandas", "numpy", "torch", "pyarrow", "sklearn", "streamlit")
WHAT_LOADED = """
import runpy, sys
sys.argv = ["govern"] + sys.argv[1:]
try:
    runpy.run_module("governance.cli", run_name="__main__")
except SystemExit:
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules) or "-", file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing store to time against (default: a fresh demo store)")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home or _demo(Path(tmp) / "demo")
        env = os.environ | {"GOVERN_HOME": str(home), "GOVERN_TOKEN": _token(home)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cached = env | {"PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
        uncached = env | {"PYTHONDONTWRITEBYTECODE": "1"}
        print(f"store: {home}   python: {sys.version.split()[0]}   runs per command: {args.repeat}")
        for title, environment in (("bytecode cached (an installed package)", cached),
                                   ("bytecode not cached (PYTHONDONTWRITEBYTECODE=1)", uncached)):
            print(f"\n{title}\n{'command':<18} {'median s':>9} {'fastest s':>10}  heavy libraries loaded")
            for command in COMMANDS:
                _run(command, environment)  # warm: the OS file cache, and the bytecode where it is cached
                times = [_run(command, environment) for _ in range(args.repeat)]
                print(f"{'govern ' + ' '.join(command):<18} {statistics.median(times):>9.3f} {min(times):>10.3f}"
                      f"  {_loaded(command, environment)}")


def _run(command: tuple[str, ...], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "governance.cli", *command], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _loaded(command: tuple[str, ...], env: dict[str, str]) -> str:
    script = WHAT_LOADED.format(heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script, *command], env=env, capture_output=True, text=True)
    return done.stderr.strip().splitlines()[-1]


def _demo(home: Path) -> Path:
    print("building the demo store (govern demo) ...", flush=True)
    subprocess.run([sys.executable, "-m", "governance.cli", "demo", "--home", str(home)], check=True,
                   stdout=subprocess.DEVNULL)
    return home


def _token(home: Path) -> str:
    """An API token for a reviewer, created by an admin of the store."""
    from governance.service import Service
    from governance.store import FileBackend

    users = FileBackend(home / "govern.duckdb").run(lambda conn: conn.execute(
        "SELECT name, role FROM users WHERE disabled_at IS NULL ORDER BY name").fetchall())
    admin = next(name for name, role in users if role == "admin")
    reviewer = next((name for name, role in users if role == "reviewer"), admin)
    return Service.open(home=home, actor=admin).create_token(user=reviewer, name="cli-start-benchmark").secret


if __name__ == "__main__":
    main()
