"""The content-addressed artifact folder: files stored once, named by their sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from governance.errors import GovernError, InvalidInput, NotFound
from governance.limits import max_artifact_bytes
from governance.private import private_dir

_CHUNK = 1 << 20
STALE_AFTER_S = 3600  # work in progress untouched this long was left by a killed process
_swept: set[Path] = set()
_verified: dict[Path, tuple[int, int]] = {}  # stored files whose content matched their name: (size, mtime_ns) then


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """`root/sha256/ab/abcdef…`; writes go through `root/tmp/` and an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def scratch_path(self, suffix: str = "") -> Path:
        """A fresh path under tmp/ for work in progress (removed or adopted by the caller)."""
        private_dir(self.root)
        private_dir(self.tmp_dir)
        self._sweep()
        return self.tmp_dir / f"{uuid.uuid4().hex}{suffix}.part"

    def _sweep(self) -> None:
        """Remove work in progress that a killed process left behind (once per process and store)."""
        if self.tmp_dir in _swept:
            return
        _swept.add(self.tmp_dir)
        cutoff = time.time() - STALE_AFTER_S
        for leftover in self.tmp_dir.glob("*.part*"):
            try:
                if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
            except OSError:
                pass  # another process's sweep got there first

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy `source` in; return (sha256, size). Storing the same bytes again is a no-op.

        Refuses a symbolic link (say which file you mean) and a file over the artifact size limit."""
        source = Path(source)
        if source.is_symlink():
            raise InvalidInput(f"{source} is a symbolic link; give the file it points to ({source.resolve()}).")
        if not source.is_file():
            raise NotFound(f"file {source} does not exist or is not a regular file.")
        limit = max_artifact_bytes()
        if source.stat().st_size > limit:
            raise InvalidInput(f"{source} holds {source.stat().st_size:,} bytes, more than the {limit:,} an artifact "
                               "may have (GOVERN_MAX_ARTIFACT_BYTES raises the limit).")
        scratch = self.scratch_path()
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, open(scratch, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
        except OSError as exc:
            scratch.unlink(missing_ok=True)
            raise InvalidInput(f"cannot read {source}: {exc.strerror}.") from exc
        return self.adopt(scratch, digest.hexdigest())

    def adopt(self, scratch: Path, sha256: str) -> tuple[str, int]:
        """Move a finished scratch file to its content address (atomic; idempotent)."""
        target = self.path_for(sha256)
        private_dir(self.root / "sha256")  # made with the fan-out folder below it, it had the umask's 0755
        private_dir(target.parent)
        size = scratch.stat().st_size
        if target.exists():
            scratch.unlink()
        else:
            os.chmod(scratch, 0o600)
            os.replace(scratch, target)
        return sha256, size

    def open_path(self, sha256: str) -> Path:
        """The stored file named `sha256`, once its content is checked against that name (once per process
        while its size and modification time stay as they were): a prediction set overwritten on disk with
        better scores had been evaluated as the version's, silently."""
        path = self.path_for(sha256)
        if not path.exists() and not path.is_symlink():
            raise NotFound(f"artifact {sha256} is missing from {self.root}.")
        seen = path.lstat()
        if not stat.S_ISREG(seen.st_mode):  # a FIFO or /dev/zero behind a link hung every reader
            raise GovernError(f"artifact {sha256[:12]}… in {self.root} is no longer a stored file (a link, a folder "
                              "or a device now stands in its place: tampering or damage); restore it from a backup. "
                              "Nothing read it.")
        stamp = (seen.st_size, seen.st_mtime_ns)
        if _verified.get(path) != stamp:
            if sha256_file(path) != sha256:
                raise GovernError(f"artifact {sha256[:12]}… in {self.root} no longer matches its sha256: the file "
                                  "was changed on disk after it was stored (tampering or damage); restore it from a "
                                  "backup. Nothing read it.")
            _verified[path] = stamp
        return path

    def discard(self, scratch: Path) -> None:
        if scratch.is_dir():
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            scratch.unlink(missing_ok=True)
