"""New output folders (audit exports, reports) written whole: into a scratch folder beside the target
while the unit of work runs, moved into place once it committed, with the target reserved meanwhile so
that two processes writing to one folder cannot both record their work and then collide."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from governance.errors import Conflict, GovernError, InvalidInput


@contextmanager
def new_folder(out: Path, *, what: str) -> Iterator[Path]:
    """Yield a scratch folder to write `what` into; when the block returns, it becomes `out` (which must
    not exist or be empty). A second process aiming at `out` meanwhile is refused before it writes
    anything. On an error inside the block the scratch folder is removed and `out` is as it was."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} already exists and is not an empty folder; choose a new one.")
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.parent / f".{out.name}.govern-writing"
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise Conflict(f"another govern process is writing {out} now (or died doing so: remove {lock} if none "
                       "is running); choose another folder.") from None
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    keep = False  # the scratch folder, where its files are all that is left of recorded work
    try:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):  # filled between the check and the lock
            raise InvalidInput(f"{out} already exists and is not an empty folder; choose a new one.")
        yield scratch
        try:
            scratch.rename(out)  # replaces an empty folder in one step
        except OSError as exc:
            keep = True
            raise GovernError(f"the {what} was recorded, but it could not be moved to {out} "
                              f"({exc.strerror or exc}); its files are in {scratch}.") from exc
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        lock.unlink(missing_ok=True)
