"""The files and paths an operator hands to dhbot. Inputs (job files, order lists,
config.yaml, profiles) are read as regular files only, with a bound; text as UTF-8 (CSV
order lists also as GB18030, what Excel saves on Chinese Windows) without control
characters, and YAML without the constructs that make a small file expensive (aliases,
deep nesting). Output paths are checked before any work starts.

Every refusal is the caller's error class (JobError, ConfigError) with the file and, where
known, the line: never a traceback, never a hang.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bot.errors import UsageError

# Deeper nesting than this has no place in a job or a configuration.
MAX_DEPTH = 50
# Control characters other than tab, line feed and carriage return.
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Encodings by codec name, as people know them.
_ENCODING_NAMES = {"utf-8": "UTF-8", "gb18030": "GB18030"}


def read_regular(path: Path, what: str, max_bytes: int, error: type[UsageError],
                 too_large_hint: str = "") -> bytes:
    """The bytes of a regular file of at most `max_bytes`; FIFOs, devices and folders are
    refused without blocking on them, and no more than the bound is ever read."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise wait for ever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: cannot read the {what}: not a regular file")
        if info.st_size > max_bytes:
            raise error(f"{path}: {info.st_size} bytes is too large for a {what} "
                        f"(at most {_size(max_bytes)}){too_large_hint}")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if size > max_bytes:  # grew while being read
        raise error(f"{path}: too large for a {what} (at most {_size(max_bytes)})")
    return b"".join(chunks)


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MB" if count >= 1024 * 1024 else f"{count // 1024} KB"


def decode_text(data: bytes, path: Path | str, error: type[UsageError],
                encodings: Sequence[str] = ("utf-8",)) -> str:
    """UTF-8 text (a BOM is fine) without control characters, or a refusal naming the line;
    `encodings` widens what is accepted (see `decode_text_as`)."""
    return decode_text_as(data, path, error, encodings)[0]


def decode_text_as(data: bytes, path: Path | str, error: type[UsageError],
                   encodings: Sequence[str] = ("utf-8",)) -> tuple[str, str]:
    """The text, and the name of the encoding it was read in: the first of `encodings`
    (codec names, e.g. "utf-8", "gb18030") that decodes every byte strictly. UTF-8 may start
    with a BOM. A refusal names the file, the line and the accepted encodings."""
    accepted = " or ".join(_ENCODING_NAMES.get(name, name) for name in encodings)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or _looks_utf16(data):
        raise error(f"{path}: the file looks like UTF-16 text; save the file as {accepted}")
    # Raw bytes are safe to scan: no byte below 0x20 (or 0x7F) is part of a multibyte
    # character in UTF-8 or GB18030.
    bad = _CONTROL_BYTE.search(data)
    if bad:
        line = data[: bad.start()].count(b"\n") + 1
        raise error(f"{path}:{line}: control character U+{bad.group()[0]:04X} in the file; "
                    f"save it as plain {accepted} text")
    tried = encodings
    if data.startswith(codecs.BOM_UTF8) and "utf-8" in encodings:
        tried = ("utf-8",)  # the file says it is UTF-8: a bad byte is a bad byte
    failed: int | None = None  # where the first bad byte is
    for encoding in tried:
        utf8 = encoding == "utf-8"
        try:
            text = data.decode("utf-8-sig" if utf8 else encoding)
        except UnicodeDecodeError as exc:
            # utf-8-sig counts from after the BOM it took off.
            bom = len(codecs.BOM_UTF8) if utf8 and data.startswith(codecs.BOM_UTF8) else 0
            start = exc.start + bom
            # The encoding that read furthest is the one the file was most likely meant to
            # be in, so its first bad byte is the one worth showing.
            failed = start if failed is None else max(failed, start)
            continue
        name = _ENCODING_NAMES.get(encoding, encoding)
        if utf8 and data.startswith(codecs.BOM_UTF8):
            name += " with BOM"
        # GB18030 has a byte order mark of its own, read as U+FEFF.
        return text.removeprefix("\ufeff"), name
    assert failed is not None, "no encodings given"
    line = data[:failed].count(b"\n") + 1
    shown = " or ".join(_ENCODING_NAMES.get(name, name) for name in tried)
    raise error(f"{path}:{line}: not {shown} text (byte {failed}); save the file as "
                f"{accepted}")


def _looks_utf16(data: bytes) -> bool:
    sample = data[:200]
    return len(sample) >= 4 and sample.count(0) >= len(sample) // 4


def yaml_problem(text: str) -> tuple[int, str] | None:
    """The first reason YAML text cannot be read safely, as (line, message), or None:
    a syntax error, anchors and aliases (a few lines can expand to billions of values),
    nesting deeper than MAX_DEPTH."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                return _line(event), ("anchors and aliases (&name, *name) are not supported; "
                                      "write the values out")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return _line(event), f"nested more than {MAX_DEPTH} levels deep"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if mark is None:
            return 0, f"not valid YAML: {exc.problem or exc}"
        return mark.line + 1, (f"not valid YAML (line {mark.line + 1}, column "
                               f"{mark.column + 1}): {exc.problem or exc}")
    except yaml.YAMLError as exc:
        return 0, f"not valid YAML: {exc}"
    return None


def _where(source: str, line: int) -> str:
    return f"{source}:{line}" if line else source


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


def load_yaml(text: str, source: str, error: type[UsageError]) -> Any:
    """`yaml.safe_load` of text that `yaml_problem` finds fine; every problem as `error`."""
    problem = yaml_problem(text)
    if problem is not None:
        raise error(f"{_where(source, problem[0])}: {problem[1]}")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(f"{_where(source, mark.line + 1 if mark else 0)}: not valid YAML: "
                    f"{exc.problem or exc}") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # Tagged scalars (!!int abc, !!timestamp 2001-13-45) fail in their constructor.
        raise error(f"{source}: not valid YAML: {exc}") from None


def check_writable(path: Path, option: str, error: type[UsageError]) -> None:
    """Refuse an output path that cannot be written, before any browser starts."""
    where = f"{option} {path}"
    if path.is_dir():
        raise error(f"{where}: cannot be written: it is a folder")
    parent = path.parent
    if not parent.is_dir():
        raise error(f"{where}: cannot be written: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                   and not os.access(path, os.W_OK)):
        raise error(f"{where}: cannot be written: permission denied")
