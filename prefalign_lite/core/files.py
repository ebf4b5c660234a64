"""Files are written whole or not at all: to a temporary name in the same folder, then renamed
(``os.replace`` is atomic on one file system), so a reader never sees half a file and a failed
write never replaces a good one. Folders are built the same way. Also the kit's cache folder."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, payload, **dump_kwargs) -> Path:
    """:func:`write_text` of ``json.dumps(payload, indent=1, **dump_kwargs)``."""
    return write_text(path, json.dumps(payload, **{"indent": 1, **dump_kwargs}))


@contextmanager
def building(path: str | Path, check=None):
    """``with building(target) as scratch:`` fill the temporary file ``scratch``; on success (and
    when ``check(scratch)`` does not raise) it is renamed to ``target``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def building_folder(target: str | Path, exist_ok: bool = False):
    """``with building_folder(target) as scratch:`` fill the folder ``scratch`` (a fresh temporary
    folder beside ``target``); on success it is renamed to ``target``. When ``target`` already
    exists it is replaced, or, with ``exist_ok`` (another process finished first), kept and the
    scratch folder removed. On any error the scratch folder is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield scratch
        if target.exists() and not exist_ok:
            shutil.rmtree(target)
        try:
            os.replace(scratch, target)
        except OSError:
            if not exist_ok:
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cache_root() -> Path:
    """``$PREFALIGN_CACHE``, else ``.cache/`` in the kit's checkout, else ``~/.cache/prefalign_lite``."""
    if os.environ.get("PREFALIGN_CACHE"):
        return Path(os.environ["PREFALIGN_CACHE"])
    checkout = Path(__file__).resolve().parent.parent.parent
    if (checkout / "pyproject.toml").exists():
        return checkout / ".cache"
    return Path.home() / ".cache" / "prefalign_lite"
