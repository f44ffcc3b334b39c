"""Store files are private to their owner: folders 0700, files 0600 (password hashes, the signing key
and every artifact live there)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if missing and make it 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _restrict(path, 0o700)
    return path


def private_file(path: Path) -> None:
    """Make an existing file 0600 (a no-op when it already is, or when it is gone)."""
    _restrict(Path(path), 0o600)


def _restrict(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        if current != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass
    except PermissionError:  # someone else's file: reading still works, and status shows the mode
        pass
