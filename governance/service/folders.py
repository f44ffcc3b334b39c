"""New output folders (audit exports, reports) written whole: into a scratch folder beside the target
while the unit of work runs, moved into place once it committed, with the target reserved meanwhile so
that two processes writing to one folder cannot both record their work and then collide. A process killed
meanwhile leaves its scratch folder; the next one writing a folder beside it removes it."""

from __future__ import annotations

import hashlib
import os
import re
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
    _check_new(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    held = _hold(_lock(out), out)
    try:
        _sweep(out)
        scratch = Path(tempfile.mkdtemp(prefix=f".{_short(out.name)}{_SCRATCH}", dir=out.parent))
        (scratch / _MARK).touch()
    except BaseException:
        _release(_lock(out), held)
        raise
    keep = False  # the scratch folder, where its files are all that is left of recorded work
    try:
        _check_new(out)  # filled, or made a link, between the check and the lock
        yield scratch
        try:
            (scratch / _MARK).unlink()  # finished: no sweep takes it now, whatever happens next
            scratch.rename(out)  # replaces an empty folder in one step
        except OSError as exc:
            keep = True
            raise GovernError(f"the {what} was recorded, but it could not be moved to {out} "
                              f"({exc.strerror or exc}); its files are in {_set_aside(scratch, out)}.") from exc
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
        _release(_lock(out), held)


_SCRATCH = ".govern-scratch-"  # ".{name}.govern-scratch-" and tempfile's 8 characters: name's scratch folder
_MARK = ".govern-unfinished"  # in a scratch folder until its work is done: only such a folder is ever swept (a
# user's own folder of that name, or the files of recorded work an error named, had been)
_LEFT = re.compile(r"\.(.+)" + re.escape(_SCRATCH) + r"[a-z0-9_]{8}", re.DOTALL)  # a name may hold a newline


def _lock(out: Path) -> Path:
    return out.parent / f".{_short(out.name)}.govern-writing"


def _short(name: str) -> str:
    """`name`, or where the suffixes of its lock and scratch folder would take it past the 255 bytes a file
    name may have, its first 160 bytes and a digest of the whole: the same for the same name, and its own
    shortened form."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= 200:
        return name
    head = encoded[:160].decode("utf-8", "ignore")
    return f"{head}~{hashlib.sha256(encoded).hexdigest()[:16]}"


def _release(lock: Path, held: int) -> None:
    lock.unlink(missing_ok=True)
    os.close(held)


def _sweep(out: Path) -> None:
    """Remove the scratch folders beside `out` (whose lock this process holds) that no living process writes:
    those of killed writers, which only the lock of the folder they were for tells from those being written."""
    try:
        entries = list(out.parent.iterdir())
    except OSError:  # a folder it may write but not list: nothing to sweep that it can see
        return
    for entry in entries:
        found = _LEFT.fullmatch(entry.name)
        if found is None or found[1] in (".", "..") or entry.is_symlink() or not entry.is_dir() \
                or (entry / _MARK).is_symlink() or not (entry / _MARK).is_file():
            continue
        target = out.parent / found[1]
        if found[1] == _short(out.name):
            shutil.rmtree(entry, ignore_errors=True)
            continue
        try:
            held = _hold(_lock(target), target)
        except GovernError:
            continue  # another process is writing that folder now (the scratch folder is its), or its lock is
            # not a file to take: left for whoever writes that folder
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            _release(_lock(target), held)


def _set_aside(scratch: Path, out: Path) -> Path:
    """The unmovable scratch folder of recorded work renamed so that no later writer takes it for a killed one's
    (where even that fails it stays, and is named, where it is)."""
    kept = out.parent / f"{out.name}.unmoved-{scratch.name[-8:]}"
    try:
        os.mkdir(kept)  # fails where anything is there already; rename then replaces the empty folder
    except OSError:
        return scratch
    try:
        scratch.rename(kept)
    except OSError:
        kept.rmdir()
        return scratch
    return kept


def _check_new(out: Path) -> None:
    """InvalidInput unless `out` is free: missing, or an empty folder. A symbolic link (dangling, or one of a
    loop) is refused here: the folder cannot be moved onto it, and the work was found unmovable only after it
    was recorded."""
    if out.name in ("", ".", ".."):  # the folder it would be written beside is the folder itself, or in it
        raise InvalidInput(f"{out} names a folder by where it is ('.', '..' or '/'), not a new folder; give a new "
                           "folder's path (for example ./audit-export).")
    if out.is_symlink():
        raise InvalidInput(f"{out} is a symbolic link; give the path of a new folder.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidInput(f"{out} already exists and is not an empty folder; choose a new one.")


def _hold(lock: Path, out: Path) -> int:
    """An open descriptor holding an exclusive lock on the file `lock`: the system lets it go when the
    process dies, so a process killed while writing `out` leaves a file nobody holds, which the next one
    takes (it had refused every later write to `out` until someone removed the file by hand). The file
    must still be the one at `lock` once held: one removed by its finishing holder meanwhile is no lock."""
    import fcntl

    while True:
        try:  # never through a link: as root, one had made a file wherever it pointed
            handle = os.open(lock, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise InvalidInput(f"{lock} is in the way of the lock govern takes while writing {out} (a symbolic link or "
                               f"a folder: {exc.strerror or exc}); remove it.") from exc
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise Conflict(f"another govern process is writing {out} now; choose another folder, or wait for it "
                           "to finish.") from None
        try:
            if os.stat(lock).st_ino == os.fstat(handle).st_ino:
                return handle
        except FileNotFoundError:
            pass
        os.close(handle)  # the holder finished and removed it between our open and our lock: try again
