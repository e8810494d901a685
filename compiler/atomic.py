"""All-or-nothing output: a failure leaves no partial file and never replaces a good one.

Every output, file or folder, is written into a private staging folder beside it
(`.nnforge-<host>-<pid>-<random>.tmp/<name>`) and moved into place only when the block that
writes it succeeded; inside `transaction()`, only when every block of the transaction (all
targets of one compile, its checks and its report) succeeded. Moving into place is one
`rename(2)`, or for a path that exists one `renameat2(RENAME_EXCHANGE)` that swaps old and new
atomically, files and folders alike; the old version is then deleted from the staging folder.

Where the kernel cannot exchange, a folder is replaced by two renames with the old version kept
as `.backup.<name>` in the staging folder; should the process die between them, the next write
into that folder puts the backup back. A staging folder whose process is gone (killed, crashed)
is deleted by the next write into the same folder. Commits take an exclusive lock on the parent
folder, so concurrent compiles to one path each commit whole, the last one winning.

New files and folders get the permissions the umask allows, like any file a program creates.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import socket
import stat
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from compiler.errors import UserInputError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: commits are not serialized between processes
    fcntl = None

STAGE_PREFIX, STAGE_SUFFIX, BACKUP_PREFIX = ".nnforge-", ".tmp", ".backup."
_HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:24] or "host"
_STAGE_NAME = re.compile(rf"^{re.escape(STAGE_PREFIX)}(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]+)-[A-Za-z0-9_]+"
                         rf"{re.escape(STAGE_SUFFIX)}$")


@dataclass
class _Entry:
    target: Path
    staged: Path
    state: str = "staged"   # staged -> created | exchanged | backed-up


class Transaction:
    """Outputs staged so far; `commit` moves all of them into place, `abort` drops them."""

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.stages: dict[Path, Path] = {}   # parent folder -> its staging folder
        self.created: list[Path] = []         # folders made for the outputs, removed again if left empty

    def stage(self, target: Path, directory: bool) -> _Entry:
        target = _checked_target(target)
        if any(_same(e.target, target) for e in self.entries):
            raise UserInputError(f"two outputs of one compile are written to '{target}'",
                                 hint="give each target and the report its own path")
        if not directory and _is_dir(target):
            raise UserInputError(f"'{target}' is a folder, and this output is a single file",
                                 hint=f"name a file inside it (e.g. {target / 'model.onnx'}) or another path")
        path = self._stage_dir(target.parent) / target.name
        try:
            os.mkdir(path, 0o777) if directory else open(path, "xb").close()  # modes as the umask allows
        except OSError as exc:
            raise _write_error(target, exc) from None
        entry = _Entry(target, path)
        self.entries.append(entry)
        return entry

    def discard(self, entry: _Entry) -> None:
        self.entries.remove(entry)
        _remove(entry.staged)

    def staged_path(self, target: Path) -> Path | None:
        for e in self.entries:
            if e.state == "staged" and _same(e.target, target):
                return e.staged
        return None

    def commit(self) -> None:
        with _locked(sorted(self.stages)):
            done: list[_Entry] = []
            try:
                for entry in self.entries:
                    _move_into_place(entry)
                    done.append(entry)
            except BaseException as exc:  # an interrupt too: nothing stays half committed
                for committed in reversed(done):
                    _roll_back(committed)
                if isinstance(exc, OSError):
                    raise _write_error(entry.target, exc) from None
                raise
        self.abort()  # the staging folders now hold only the replaced versions

    def abort(self) -> None:
        for stage_dir in self.stages.values():
            shutil.rmtree(stage_dir, ignore_errors=True)
        self.stages.clear()
        for folder in self.created:  # deepest first; a folder holding outputs is not empty
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _stage_dir(self, parent: Path) -> Path:
        if parent not in self.stages:
            self.created += [p for p in (parent, *parent.parents) if not os.path.lexists(p)]
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _write_error(parent, exc) from None
            clean_stale(parent)
            stage_dir = parent / f"{STAGE_PREFIX}{_HOST}-{os.getpid()}-{secrets.token_hex(6)}{STAGE_SUFFIX}"
            try:
                os.mkdir(stage_dir, 0o700)
            except OSError as exc:
                raise _write_error(parent, exc) from None
            self.stages[parent] = stage_dir
        return self.stages[parent]


_CURRENT: ContextVar[Transaction | None] = ContextVar("nnforge_output_transaction", default=None)


@contextlib.contextmanager
def transaction() -> Iterator[Transaction]:
    """Group outputs: everything written inside is committed together when the block succeeds.

    Nested transactions join the outermost one."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    txn = Transaction()
    token = _CURRENT.set(txn)
    try:
        yield txn
        txn.commit()
    except BaseException:
        txn.abort()
        raise
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def atomic_path(target: Path | str, *, directory: bool = False) -> Iterator[Path]:
    """Yield a staged path for `target` (an empty file, or an empty folder with `directory=True`);
    it replaces `target` when the block (and the enclosing transaction, if any) succeeds."""
    with transaction() as txn:
        entry = txn.stage(Path(target), directory)
        try:
            yield entry.staged
        except OSError as exc:
            txn.discard(entry)
            if exc.filename is not None and str(exc.filename).startswith(str(entry.staged)):
                raise _write_error(entry.target, exc) from None
            raise
        except BaseException:
            txn.discard(entry)
            raise


def current_path(target: Path) -> Path:
    """Where `target`'s content is right now: its staged copy while a transaction is open."""
    txn = _CURRENT.get()
    staged = txn.staged_path(Path(target)) if txn is not None else None
    return staged if staged is not None else Path(target)


def clean_stale(parent: Path) -> None:
    """Delete staging folders left in `parent` by dead processes of this host, first putting back
    any output they had moved aside and not replaced."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith(STAGE_PREFIX)]
    except OSError:
        return
    stale = [parent / n for n in names if (m := _STAGE_NAME.match(n)) and m["host"] == _HOST
             and not _alive(int(m["pid"]))]
    if not stale:
        return
    with _locked([parent]):
        for stage_dir in stale:
            with contextlib.suppress(OSError):
                for backup in stage_dir.iterdir():
                    original = parent / backup.name[len(BACKUP_PREFIX):]
                    if backup.name.startswith(BACKUP_PREFIX) and not os.path.lexists(original):
                        os.rename(backup, original)
            shutil.rmtree(stage_dir, ignore_errors=True)


# ---- moving into place ---------------------------------------------------------------------
def _move_into_place(entry: _Entry) -> None:
    if not os.path.lexists(entry.target):
        os.rename(entry.staged, entry.target)
        entry.state = "created"
        return
    if _exchange(entry.staged, entry.target):
        entry.state = "exchanged"
        return
    backup = entry.staged.with_name(BACKUP_PREFIX + entry.target.name)
    if not entry.staged.is_dir() and not _is_dir(entry.target) and _hard_link(entry.target, backup):
        os.replace(entry.staged, entry.target)  # a file: the old one stays reachable as the backup
    else:
        os.rename(entry.target, backup)  # a kill from here to the next line is undone by clean_stale
        os.rename(entry.staged, entry.target)
    entry.state = "backed-up"


def _hard_link(source: Path, link: Path) -> bool:
    try:
        os.link(source, link, follow_symlinks=False)
        return True
    except OSError:  # a file system without hard links: fall back to two renames
        return False


def _roll_back(entry: _Entry) -> None:
    with contextlib.suppress(OSError):
        if entry.state == "exchanged":
            _exchange(entry.staged, entry.target)
        elif entry.state == "created":
            os.rename(entry.target, entry.staged)
        elif entry.state == "backed-up":
            backup = entry.staged.with_name(BACKUP_PREFIX + entry.target.name)
            _remove(entry.target)
            os.rename(backup, entry.target)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None
_RENAMEAT2 = getattr(_LIBC, "renameat2", None)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


# ---- helpers -----------------------------------------------------------------------------------
def _checked_target(target: Path) -> Path:
    if str(target) in ("", ".") or target.name in ("", ".", ".."):
        raise UserInputError(f"'{target}' is not a usable output path", hint="name a file or folder to write")
    return target


def _write_error(target: Path, exc: OSError) -> UserInputError:
    shown = str(target) if len(str(target)) <= 200 else str(target)[:200] + "..."
    return UserInputError(f"cannot write '{shown}': {exc.strerror or exc}",
                          hint="check that the folder exists, is writable, and the name is not too long")


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _remove(path: Path) -> None:
    if _is_dir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


@contextlib.contextmanager
def _locked(folders: list[Path]) -> Iterator[None]:
    """Exclusive flock on each folder (in sorted order, so two processes never deadlock)."""
    fds = []
    try:
        for folder in folders if fcntl is not None else []:
            with contextlib.suppress(OSError):  # an unreadable folder is written unlocked
                fds.append(os.open(folder, os.O_RDONLY))
                fcntl.flock(fds[-1], fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)
