"""What checking the witness costs: every line's Ed25519 signature, the tiling, and each head against
the live chain (`govern status`, `govern audit verify` and the dashboard's Overview do this).

Writes N witness lines, one per unit of work of one event (the worst case: every event its own unit),
then times `witness.check` against a matching chain (the first check in a process, and the next one,
which verifies only lines it has not seen) and against a chain rebuilt from the middle.

    python benchmarks/witness_speed.py [--lines 10000 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from governance import witness
from governance.keys import public_key_hex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    public = public_key_hex(key)
    print(f"{'lines':>8} {'write':>9} {'first check':>12} {'next check':>11} {'check (rebuilt)':>16} {'file':>9}")
    for count in args.lines:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "heads.jsonl"
            live = {seq: hashlib.sha256(str(seq).encode()).hexdigest() for seq in range(1, count + 1)}
            started = time.perf_counter()
            for seq, digest in live.items():
                witness.record(path, key, first=seq, seq=seq, head_hash=digest, ts="2026-11-28T00:00:00.000000Z")
            written = time.perf_counter() - started
            started = time.perf_counter()
            intact = witness.check(path, public, live)
            intact_s = time.perf_counter() - started
            assert intact.ok, intact.problems
            started = time.perf_counter()
            assert witness.check(path, public, live).ok  # again, in the same process (the dashboard's case)
            again_s = time.perf_counter() - started
            rebuilt = {seq: (digest if seq < count // 2 else "0" * 64) for seq, digest in live.items()}
            started = time.perf_counter()
            broken = witness.check(path, public, rebuilt)
            broken_s = time.perf_counter() - started
            assert not broken.ok and broken.first_bad_seq == count // 2
            print(f"{count:>8,} {written:>8.2f}s {intact_s:>11.3f}s {again_s:>10.3f}s {broken_s:>15.3f}s "
                  f"{path.stat().st_size / 1e6:>7.1f}MB")


if __name__ == "__main__":
    main()
