"""Where preference rows come from: local files (JSONL, JSON lines or one JSON array, Parquet,
optionally gzipped), folders (saved with ``save_to_disk``, or holding data files as a hub dataset
does), or a hub dataset id. Every row comes with where it was found (file and line), and every
way a source can fail gets an error naming it. :mod:`.data` validates the rows.
"""
from __future__ import annotations

import difflib
import gzip
import json
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
DATA_SUFFIXES = JSON_SUFFIXES + (".parquet",)
_PATHLIKE_SUFFIXES = DATA_SUFFIXES + (".gz", ".csv", ".tsv", ".txt", ".arrow", ".zip", ".yaml", ".yml")
_HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SAVED_DATASET_FILES = ("dataset_dict.json", "state.json", "dataset_info.json")


class PreferenceDataError(ValueError):
    """A row that cannot be used, named by its index (0-based), its field and, for files, where it
    is (file and line). ``reason`` is the problem without row-specific details (for counting)."""

    def __init__(self, row: int, field_name: str, problem: str, reason: str | None = None, where: str | None = None):
        self.row, self.field, self.problem = row, field_name, problem
        self.reason, self.where = reason or problem, where
        super().__init__(self._message())

    def _message(self) -> str:
        return f"row {self.row}, field '{self.field}': {self.problem}" + (f" [{self.where}]" if self.where else "")

    def at(self, where: str | None) -> "PreferenceDataError":
        """The same error, located (file and line, or dataset and split)."""
        if where and not self.where:
            self.where = where
            self.args = (self._message(),)
        return self


class DataSourceError(ValueError):
    """A file, folder or dataset that cannot be read as a whole (empty, wrong format, no such
    split, unreachable hub id); the message names it."""


def read_rows(source: str | Path, split: str = "train") -> list:
    """The raw rows (any JSON values) of a source (see the module doc); raises at the first line
    that is not valid UTF-8 or JSON, naming the file and the line."""
    rows = []
    for _, _, item in iter_rows(source, split):
        if isinstance(item, PreferenceDataError):
            raise item
        rows.append(item)
    return rows


def split_names(source) -> list[str] | None:
    """The splits a local source has, without reading its rows: a saved ``DatasetDict``'s, a data
    folder's (from its file names), ``["train"]`` for a single file or a single saved dataset; ``None``
    for a hub id (not looked up: that needs the network)."""
    path = _local_path(source)
    if path is None:
        return None
    if not path.is_dir():
        return ["train"]
    if (path / "dataset_dict.json").exists():
        return list(json.loads((path / "dataset_dict.json").read_text())["splits"])
    if any((path / name).exists() for name in _SAVED_DATASET_FILES):
        return ["train"]
    files = [f for f in path.rglob("*") if f.is_file() and _data_suffix(f)
             and not any(part.startswith(".") for part in f.relative_to(path).parts)]
    names = sorted({re.split(r"[-.]", f.name, maxsplit=1)[0] for f in files})
    return names if len(names) > 1 else ["train"] if names else []


def describe_value(value) -> str:
    """A short description of a JSON value for an error message, e.g. 'a list of 3 items'."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with keys {shorten(str(sorted(map(str, value))))}"
    return f"{type(value).__name__} {shorten(repr(value))}"


def shorten(text: str, n: int = 40) -> str:
    """``text`` cut to ``n`` characters (with '...')."""
    return text if len(text) <= n else text[:n] + "..."


def iter_rows(source, split: str):
    """``(row index, where, row or PreferenceDataError)`` for every row; a source with no rows is
    a ``DataSourceError``."""
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty string, got {split!r}")
    path = _local_path(source)
    if path is None:
        rows, what = _hub_rows(str(source), split), f"hub dataset {source!r}, split {split!r}"
    elif path.is_dir():
        rows, what = _folder_rows(path, split), f"{path} (split {split!r})"
    else:
        if split != "train":
            raise DataSourceError(f"{path}: a single file has one split, 'train'; split {split!r} does not exist "
                                  "(leave split out, or pass a folder or hub id that has it)")
        rows, what = _file_rows(path, 0), str(path)
    count = 0
    for count, item in enumerate(rows, start=1):
        yield item
    if count == 0:
        raise DataSourceError(f"{what}: no rows (the file or split is empty, or holds only blank lines)")


def _local_path(source) -> Path | None:
    """The local path ``source`` names, ``None`` for a hub id; a path-like source that does not
    exist is ``FileNotFoundError`` (never sent to the hub)."""
    if isinstance(source, os.PathLike):
        text, pathlike = os.fspath(source), True
    elif isinstance(source, str):
        text = source
        if not text.strip():
            raise ValueError("source is empty: pass a file, a folder or a hub dataset id")
        pathlike = (text.startswith((".", "/", "~")) or not _HUB_DATASET_ID.match(text)
                    or text.lower().endswith(_PATHLIKE_SUFFIXES))
    else:
        raise TypeError(f"source must be a path or a hub dataset id (str), got {type(source).__name__}")
    path = Path(text).expanduser()
    if path.exists():
        return path
    if not pathlike:
        return None
    parent = path.parent if path.parent.is_dir() else None
    near = difflib.get_close_matches(path.name, os.listdir(parent), n=3) if parent else []
    raise FileNotFoundError(f"{text}: no such file or folder (looked for {path.absolute()}); it looks like a path, "
                            "so it was not looked up on the hub" + (f"; similar names there: {near}" if near else ""))


def _hub_rows(source: str, split: str):
    import datasets

    log.info("%r is not a local file or folder: loading it as a hub dataset id (split %r)", source, split)
    try:
        loaded = datasets.load_dataset(source, split=split)
    except Exception as exc:  # noqa: BLE001 - any failure is re-raised with what was tried and what to do
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataSourceError(
            f"{source!r} is not a local file or folder, so it was treated as a hub dataset id, and loading split "
            f"{split!r} failed ({type(exc).__name__}: {first}). For a local file pass a path that exists (relative "
            f"to {Path.cwd()}), e.g. ./{source}.jsonl; for a hub dataset check the id, the split and the network "
            "(HF_DATASETS_OFFLINE=1 reads only the local cache)") from exc
    for i, row in enumerate(loaded):
        yield i, f"{source} [{split}]", row


def _folder_rows(path: Path, split: str):
    if any((path / name).exists() for name in _SAVED_DATASET_FILES):
        import datasets

        try:
            loaded = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001
            raise DataSourceError(f"{path}: looks like a saved dataset but cannot be loaded ({type(exc).__name__}: {exc})") from exc
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataSourceError(f"{path}: no split {split!r}; the saved dataset has {sorted(loaded)}")
            loaded = loaded[split]
        elif split != "train" and str(loaded.split or "train") != split:
            raise DataSourceError(f"{path}: a single saved dataset (split {str(loaded.split or 'train')!r}); "
                                  f"no split {split!r}")
        yield from ((i, f"{path} [{split}]", row) for i, row in enumerate(loaded))
        return
    files = sorted(f for f in path.rglob("*") if f.is_file() and _data_suffix(f)
                   and not any(part.startswith(".") for part in f.relative_to(path).parts))
    if not files:
        held = sorted(p.name for p in path.iterdir())[:8]
        raise DataSourceError(f"{path}: neither a dataset saved with save_to_disk (no {' or '.join(_SAVED_DATASET_FILES)}) "
                              f"nor a folder of {'/'.join(DATA_SUFFIXES)} files; it holds {held}")
    by_split: dict[str, list[Path]] = {}
    for f in files:
        by_split.setdefault(re.split(r"[-.]", f.name, maxsplit=1)[0], []).append(f)
    if split in by_split:
        chosen = by_split[split]
    elif len(by_split) == 1 and split == "train":
        chosen = files
    else:
        raise DataSourceError(f"{path}: no data file for split {split!r} (split names come from the file names "
                              f"before '-' or '.'); the folder has splits {sorted(by_split)}")
    offset = 0
    for f in chosen:
        for i, where, item in _file_rows(f, offset):
            yield i, where, item
            offset = i + 1


def _data_suffix(path: Path) -> str | None:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes and suffixes[-1] in DATA_SUFFIXES else None


def _file_rows(path: Path, offset: int):
    """Rows of one file, numbered from ``offset``; JSONL lines that are not valid UTF-8 or JSON
    come as errors (so skip mode can go on), other decoding problems fail the whole file."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        try:
            head = fh.read(4096)
        except (OSError, EOFError) as exc:
            raise DataSourceError(f"{path}: cannot be read ({exc})") from exc
        fh.seek(0)
        if head.startswith(b"PAR1"):
            yield from _parquet_rows(path, offset)
            return
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataSourceError(f"{path}: UTF-16 text; save it as UTF-8")
        if _data_suffix(path) == ".parquet":
            raise DataSourceError(f"{path}: named .parquet but is not a Parquet file")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            yield from _json_array_rows(path, fh.read(), offset)
            return
        yield from _jsonl_rows(path, fh, offset)


def _jsonl_rows(path: Path, fh, offset: int):
    index = offset
    for lineno, line in enumerate(fh, start=1):
        if lineno == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        try:
            text = line.decode("utf-8")
            item = json.loads(text, object_pairs_hook=_object_without_repeated_keys)
        except UnicodeDecodeError as exc:
            item = PreferenceDataError(index, "<line>", f"not valid UTF-8 (byte 0x{line[exc.start]:02x} at column "
                                       f"{exc.start + 1})", "not valid UTF-8", where)
        except json.JSONDecodeError as exc:
            if index == offset and line.strip() in (b"{", b"["):
                _refuse_single_object(path)
            item = PreferenceDataError(index, "<line>", f"not valid JSON ({exc.msg} at column {exc.colno})",
                                       "not valid JSON", where)
        except _RepeatedKey as exc:
            item = PreferenceDataError(index, str(exc), "appears twice in one object", "key appears twice", where)
        yield index, where, item
        index += 1


def _refuse_single_object(path: Path) -> None:
    """A file whose first line is a lone brace: one pretty-printed object rather than JSON lines."""
    try:
        whole = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DataSourceError(f"{path}: line 1 is a lone '{{'; JSONL needs one whole object per line") from None
    lists = [k for k, v in whole.items() if isinstance(v, list)] if isinstance(whole, dict) else []
    raise DataSourceError(f"{path}: holds one JSON object spread over several lines, not rows; write one object per "
                          "line (JSONL) or a JSON array of row objects" + (f" (its key(s) {lists} hold lists)" if lists else ""))


def _json_array_rows(path: Path, data: bytes, offset: int):
    try:
        items = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_object_without_repeated_keys)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataSourceError(f"{path}, line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x}); "
                              "the file is one JSON array, so it cannot be read in part") from exc
    except json.JSONDecodeError as exc:
        raise DataSourceError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg}); the file "
                              "starts with '[' so it was read as one JSON array") from exc
    except _RepeatedKey as exc:
        raise DataSourceError(f"{path}: key {str(exc)!r} appears twice in one object") from exc
    if not isinstance(items, list):
        raise DataSourceError(f"{path}: expected a JSON array of rows, got {describe_value(items)}")
    for i, item in enumerate(items):
        yield offset + i, f"{path}, array item {i}", item


def _parquet_rows(path: Path, offset: int):
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001
        raise DataSourceError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    for i, row in enumerate(rows):
        yield offset + i, f"{path}, record {i}", row


class _RepeatedKey(ValueError):
    pass


def _object_without_repeated_keys(pairs: list) -> dict:
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise _RepeatedKey(key)
        obj[key] = value
    return obj
