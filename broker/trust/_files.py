"""Private files (keys, secrets) on disk: created 0600 in a 0700 directory, never overwritten,
refused when group or others can read them. Internal to ``broker.trust``."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from broker.trust.errors import KeyFileError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(directory: Path, *, strict: bool = True) -> None:
    """Create ``directory`` (mode 0700) if needed. An existing one must be a directory and, when
    ``strict``, one that group and others cannot access."""
    if not directory.exists():
        directory.mkdir(parents=True, mode=PRIVATE_DIR_MODE)
        os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir's mode is subject to the umask
        return
    if not directory.is_dir():
        raise KeyFileError(f"{directory} exists and is not a directory")
    if not strict:
        return
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"directory {directory} is accessible by group or others (mode {mode:04o}); "
            f"run `chmod 700 {directory}` or choose a private directory"
        )


def _write_temp(directory: Path, data: bytes, mode: int) -> Path:
    """``data`` in a new temporary file in ``directory`` with ``mode``, flushed to disk."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return Path(name)


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file with mode 0600; never replaces an existing file.

    The data goes to a temporary file in the same directory first and is then hard-linked into
    place, so ``path`` either does not exist or holds the complete data, even after a crash.
    """
    tmp = _write_temp(path.parent, data, PRIVATE_FILE_MODE)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; refusing to overwrite it") from None
    finally:
        tmp.unlink()


def read_private_file(path: Path, *, max_bytes: int = 64 * 1024) -> bytes:
    """Read a private file, refusing one that is not a regular file or is group/other readable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{path} is accessible by group or others (mode {mode:04o}); run `chmod 600 {path}`"
            )
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise KeyFileError(f"{path} is larger than {max_bytes} bytes")
    return data


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (public files such as the registry); an
    existing file keeps its mode, a new one gets 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
    tmp = _write_temp(path.parent, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
