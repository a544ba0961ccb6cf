"""Resumable downloads with checksums, and archive extraction that cannot write outside its folder.

`fetch` streams a URL into ``<dest>.part``, continuing an interrupted transfer with an HTTP Range
request, and renames it to ``dest`` only once its size and checksum match. `safe_extract` refuses
archive members that are absolute, climb out with "..", or are links or devices, and extracts
the rest with tarfile's "data" filter as a second line of defence.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..utils.errors import DatasetError, OfflineError
from ..utils.network import reachable

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A downloadable file: where it lives, what it is called, and how to recognise it.

    ``checksum`` is ``"sha256:<hex>"`` or ``"md5:<hex>"``, or None where the publisher gives none.
    """

    name: str
    url: str
    checksum: str | None = None
    size: int | None = None


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, checksum: str | None, size: int | None = None) -> None:
    """Raise DatasetError unless `path` has the expected size and checksum (each when given)."""
    if size is not None and path.stat().st_size != size:
        raise DatasetError(f"size mismatch for '{path}': {path.stat().st_size} bytes, expected {size}")
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    got = file_digest(path, algorithm)
    if got != expected.lower():
        raise DatasetError(f"checksum mismatch for '{path}': {algorithm} {got}, expected {expected}")


def require_online(url: str, advice: str) -> None:
    """Fail fast with one sentence (OfflineError) when `url`'s host cannot be reached."""
    host = url.split("/")[2] if "://" in url else url
    if not reachable(url):
        raise OfflineError(f"cannot reach {host} (offline?): {advice}")


def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "anovit"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # nothing left beyond `start`: the part file is complete
            return None
        raise DatasetError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        raise OfflineError(f"download of {url} failed: {getattr(err, 'reason', err)}") from None


def fetch(archive: Archive, folder: Path, *, progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Download `archive` into `folder` (resuming ``<name>.part``) and verify it; return its path.

    A complete, verified file already in `folder` is returned without any network access. A file
    that fails verification is deleted before the error is raised, so the next run starts clean.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest, part = folder / archive.name, folder / (archive.name + ".part")
    if dest.is_file():
        try:
            verify_file(dest, archive.checksum, archive.size)
        except DatasetError as err:
            raise DatasetError(f"{err} (delete it and run the command again)") from None
        return dest
    have = part.stat().st_size if part.is_file() else 0
    response = _open(archive.url, have, timeout)
    if response is not None:
        with response:
            if have and response.status != 206:  # the server ignored the range: start over
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else archive.size
            done = have
            with open(part, "ab" if have else "wb") as out:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
    try:
        verify_file(part, archive.checksum, archive.size)
    except DatasetError as err:
        part.unlink()
        raise DatasetError(f"{err} (the download was deleted; run the command again)") from None
    part.replace(dest)
    return dest


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    name = PurePosixPath(member.name)
    where = f"archive member '{member.name}'"
    if name.is_absolute() or ".." in name.parts or not (dest / name).resolve().is_relative_to(dest.resolve()):
        raise DatasetError(f"{where} escapes the target folder '{dest}' (refused)")
    if member.issym() or member.islnk():
        raise DatasetError(f"{where} is a link to '{member.linkname}' (links are refused)")
    if not (member.isfile() or member.isdir()):
        raise DatasetError(f"{where} is not a regular file or folder (refused)")


def safe_extract(path: Path, dest: Path, *, progress: Progress | None = None) -> list[str]:
    """Extract the tar archive `path` (any compression) into `dest`; return its top-level names.

    Every member is checked before it is written; the first bad one stops the extraction with a
    DatasetError naming it (files extracted before it stay in `dest`: extract into a staging folder).
    """
    dest.mkdir(parents=True, exist_ok=True)
    top: list[str] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for count, member in enumerate(tar, 1):
                _check_member(member, dest)
                tar.extract(member, dest, filter="data")
                parts = PurePosixPath(member.name).parts
                if parts and parts[0] not in top:
                    top.append(parts[0])
                if progress is not None:
                    progress(count, None)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DatasetError(f"cannot extract '{path}': {' '.join(str(err).split())} (expected a valid tar archive)") from None
    return top


def install_archive(archive: Archive, root: Path, *, keep_archive: bool = False,
                    progress: Progress | None = None, extract_progress: Progress | None = None) -> list[str]:
    """Fetch `archive` into ``root/.downloads``, extract it through a staging folder, and move its
    top-level entries into `root` (replacing older copies); return their names."""
    root = Path(root)
    path = fetch(archive, root / ".downloads", progress=progress)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        names = safe_extract(path, staging, progress=extract_progress)
        for name in names:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            (staging / name).rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not keep_archive:
        path.unlink()
    return names
