"""Where things live: raw data (read), generated data, runs and results (written).

``ALIGNLIB_DATA_DIR``  folder with raw recordings as their original sources lay them out
                       (``stringer2019/``, ``allen_ns118/``, ``onken2016/``); default ``<repo>/data``.
``ALIGNLIB_WORK_DIR``  folder for generated data (the twin, download caches); default ``<repo>/data/generated``.
``ALIGNLIB_RUNS_DIR``  training runs (configs, checkpoints, embeddings); default ``<repo>/runs``.
``ALIGNLIB_RESULTS_DIR`` tables the book quotes; default ``<repo>/results``.

Paths built from values a user can set (parameters, ``foreach`` values) go through :func:`inside`, which
refuses any that would leave their folder, and names through :func:`check_name`. What several commands
write (a training run, an executed page, the HTML book) is guarded by :func:`locked`, a lock file held
while one command writes it.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    return _env_path("ALIGNLIB_DATA_DIR", REPO_ROOT / "data")


def work_dir() -> Path:
    return _env_path("ALIGNLIB_WORK_DIR", REPO_ROOT / "data" / "generated")


def runs_dir() -> Path:
    from alignlib import dryrun

    return dryrun.check_folder(_env_path("ALIGNLIB_RUNS_DIR", REPO_ROOT / "runs"), "training runs")


def results_dir(chapter: str | None = None) -> Path:
    from alignlib import dryrun

    root = dryrun.check_folder(_env_path("ALIGNLIB_RESULTS_DIR", REPO_ROOT / "results"), "results")
    path = inside(root, chapter) if chapter else root
    path.mkdir(parents=True, exist_ok=True)
    return path


class OutsideFolder(ValueError):
    """A path built from a value would leave the folder it belongs in (``..``, an absolute path, a link)."""


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_name(value: object, what: str = "name") -> str:
    """``value`` as one file-name component: letters, digits, ``-``, ``_`` and ``.``, not starting with
    ``.`` (so never ``..``) and without ``/``; raise :class:`OutsideFolder` otherwise."""
    text = str(value)
    if not NAME_RE.fullmatch(text):
        raise OutsideFolder(f"{what} {text!r} cannot name a file: use letters, digits, '-', '_' and '.' "
                            f"(not first), no '/'")
    return text


def inside(root: str | Path, *parts: str | Path) -> Path:
    """``root / parts`` resolved (links and ``..`` followed), refused with :class:`OutsideFolder` unless it
    lies inside ``root`` (resolved too). Nothing is created."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path == base or base not in path.parents:
        raise OutsideFolder(f"{Path(*parts) if parts else ''} would leave {base} (resolves to {path})")
    return path


def temporary_beside(final: str | Path) -> Path:
    """A new, unique name beside ``final`` for writing it before renaming it into place
    (``.<name>.<pid>-<random>.partial``): two commands writing one file never share a temporary."""
    import uuid

    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial")


_LOCKS: dict[str, object] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def locked(lock_file: str | Path, what: str, log: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the lock ``lock_file`` (a ``filelock.FileLock``: an OS lock, released when the holder exits
    or is killed) while the block runs. When another process holds it, say so (``what`` names what is
    locked) and wait. Re-entrant within one thread of a process; other threads and processes wait."""
    from filelock import FileLock, Timeout

    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(path.resolve()), FileLock(str(path)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say = log or (lambda text: print(text, file=sys.stderr, flush=True))
        say(f"[alignlib] waiting: another command is writing {what} (lock {path})")
        lock.acquire()
        say(f"[alignlib] {what}: the other command is done, going on")
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def built_in_place(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` to build a result folder in (a stored run, a derived result);
    on success it replaces ``dest`` (mode 0755) in one rename, on failure it is removed: a kill never
    leaves a half-written folder under ``dest``'s name."""
    import shutil
    import tempfile

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
