"""Dataset roots on local disk, S3 or GCS; the only module that opens dataset files.

Every path handed to a `Source` is relative to its root and is resolved inside it: absolute
paths, `..` and (on local disk) symlinks that lead out of the root are refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import fsspec

from visor.config import get_settings
from visor.errors import NotFound, SourceError

REMOTE_SCHEMES = ("s3", "gs", "gcs")


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the root, '/'-separated
    size: int


def _storage_options(protocol: str) -> dict[str, Any]:
    settings = get_settings()
    if protocol == "s3" and settings.s3_endpoint_url:
        return {"client_kwargs": {"endpoint_url": settings.s3_endpoint_url}}
    if protocol in ("gs", "gcs") and settings.gcs_endpoint_url:
        return {"endpoint_url": settings.gcs_endpoint_url}
    return {}


class Source:
    """A dataset root. `uri` is a local path or an `s3://` / `gs://` URL."""

    def __init__(self, uri: str) -> None:
        scheme = uri.split("://", 1)[0] if "://" in uri else "file"
        self.is_local = scheme == "file"
        if self.is_local:
            local = uri.removeprefix("file://")
            if not os.path.exists(local):
                raise SourceError(f"{uri}: no such file or directory")
            if not os.path.isdir(local):
                raise SourceError(f"{uri}: not a folder (point visor at the dataset's root)")
            self.root = os.path.realpath(local)
            self.uri = self.root
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem("file")
            self._real_folders: dict[str, str] = {}
        elif scheme in REMOTE_SCHEMES:
            self.fs = fsspec.filesystem(scheme, **_storage_options(scheme))
            self.root = uri.split("://", 1)[1].rstrip("/")
            self.uri = f"{scheme}://{self.root}"
            try:
                if not self.fs.isdir(self.root):
                    raise SourceError(f"{self.uri}: no such bucket or prefix")
            except SourceError:
                raise
            except Exception as e:  # the SDKs raise many kinds; all mean "can't reach it"
                raise SourceError(f"{self.uri}: cannot be read ({type(e).__name__}: {e})") from None
        else:
            raise SourceError(f"{uri}: unsupported scheme {scheme!r} (use a path, s3:// or gs://)")

    def __repr__(self) -> str:
        return f"Source({self.uri!r})"

    # -- paths ------------------------------------------------------------------------------

    def resolve(self, relpath: str) -> str:
        """The full path of `relpath` inside the root; raises SourceError if it would leave it."""
        if not relpath or "\x00" in relpath:
            raise SourceError(f"{relpath!r}: not a valid path")
        rel = relpath.replace("\\", "/")
        if rel.startswith("/") or (len(rel) > 1 and rel[1] == ":"):
            raise SourceError(
                f"{relpath}: absolute paths are not allowed (paths are relative to {self.uri})"
            )
        norm = posixpath.normpath(rel)
        if norm == ".." or norm.startswith("../"):
            raise SourceError(f"{relpath}: path leaves the dataset root {self.uri}")
        full = (
            posixpath.join(self.root, norm) if not self.is_local else os.path.join(self.root, norm)
        )
        if self.is_local:
            fast = self._resolve_in_known_folder(full)
            if fast is not None:
                return fast
            try:
                real = os.path.realpath(full, strict=True)
            except FileNotFoundError:
                return full  # a missing file: the caller reports it when opening
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise SourceError(f"{relpath}: symlink loop") from None
                raise SourceError(f"{relpath}: {e.strerror}") from None
            if real != self.root and not real.startswith(self.root + os.sep):
                raise SourceError(f"{relpath}: symlink points outside the dataset root {self.uri}")
            return real
        return full

    def _resolve_in_known_folder(self, full: str) -> str | None:
        """`full` resolved with its folder's real path worked out once (a realpath per file,
        one lstat per folder of its path, was most of exporting 100K images as links); None
        where the slow way must decide: a folder outside the root, a symlinked or missing file.
        """
        folder, name = os.path.split(full)
        real_folder = self._real_folders.get(folder)
        if real_folder is None:
            try:
                real_folder = os.path.realpath(folder, strict=True)
            except OSError:
                return None
            if real_folder != self.root and not real_folder.startswith(self.root + os.sep):
                return None
            if len(self._real_folders) >= 100_000:
                self._real_folders.clear()
            self._real_folders[folder] = real_folder
        real = os.path.join(real_folder, name)
        try:
            if stat.S_ISLNK(os.lstat(real).st_mode):
                return None
        except OSError:
            return None
        return real

    def uri_of(self, relpath: str) -> str:
        full = self.resolve(relpath)
        return full if self.is_local else f"{self.uri.split('://')[0]}://{full}"

    # -- reading ----------------------------------------------------------------------------

    def open(self, relpath: str) -> IO[bytes]:
        return self._open(relpath, self.resolve(relpath))

    def open_listed(self, relpath: str) -> IO[bytes]:
        """Open a path that `walk` listed. The walk checked it (it does not follow linked
        folders and checks linked files), so the per-file resolution that `open` does (a
        realpath: a stat per path component) is skipped on local disks."""
        if self.is_local:
            return self._open(relpath, os.path.join(self.root, relpath))
        return self.open(relpath)

    def _open(self, relpath: str, full: str) -> IO[bytes]:
        try:
            if self.is_local:
                return open(full, "rb")
            return self.fs.open(full, "rb")
        except FileNotFoundError:
            raise NotFound(f"{relpath}: file not found in {self.uri}") from None
        except IsADirectoryError:
            raise SourceError(f"{relpath}: is a folder, not a file") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise SourceError(f"{relpath}: symlink loop") from None
            raise SourceError(f"{relpath}: cannot be read ({e})") from None

    def read_bytes(self, relpath: str) -> bytes:
        with self.open(relpath) as f:
            return f.read()

    def exists(self, relpath: str) -> bool:
        try:
            return bool(self.fs.isfile(self.resolve(relpath)))
        except SourceError:
            return False

    def size(self, relpath: str) -> int:
        try:
            return int(self.fs.size(self.resolve(relpath)))
        except FileNotFoundError:
            raise NotFound(f"{relpath}: file not found in {self.uri}") from None

    def local_path(self, relpath: str) -> str | None:
        """The path on local disk, when the source is local (for fast readers)."""
        return self.resolve(relpath) if self.is_local else None

    def walk(self, problems: list[tuple[str, str]] | None = None) -> Iterator[FileEntry]:
        """Every file under the root, with its size.

        Symlink loops and symlinks leaving the root are skipped; each is appended to `problems`
        as (path, reason) when a list is given.
        """
        if self.is_local:
            yield from self._walk_local(self.root, "", problems if problems is not None else [])
            return
        prefix = self.root + "/"
        for path, info in self.fs.find(self.root, detail=True).items():
            if info.get("type") == "file" and path.startswith(prefix):
                yield FileEntry(path[len(prefix) :], int(info.get("size") or 0))

    def _walk_local(
        self, folder: str, rel: str, problems: list[tuple[str, str]]
    ) -> Iterator[FileEntry]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = f"{rel}{entry.name}"
            if entry.is_symlink():
                try:
                    self.resolve(child)
                    st = os.stat(entry.path)
                except SourceError as e:
                    problems.append((child, e.message.split(": ", 1)[-1]))
                    continue
                except OSError as e:
                    problems.append((child, f"broken symlink ({e.strerror})"))
                    continue
                if os.path.isdir(entry.path):
                    continue  # don't follow linked folders: avoids cycles
                yield FileEntry(child, st.st_size)
            elif entry.is_dir(follow_symlinks=False):
                yield from self._walk_local(entry.path, child + "/", problems)
            elif entry.is_file(follow_symlinks=False):
                yield FileEntry(child, entry.stat(follow_symlinks=False).st_size)


def remote_folder_state(uri: str) -> bool:
    """Whether the object-store prefix `uri` (s3:// or gs://) holds anything. Raises
    SourceError when the bucket can't be reached."""
    scheme, path = _split_remote(uri)
    fs = fsspec.filesystem(scheme, **_storage_options(scheme))
    try:
        return bool(fs.exists(path) and fs.find(path, maxdepth=None))
    except Exception as e:  # the SDKs raise many kinds; all mean "can't reach it"
        raise SourceError(f"{uri}: cannot be read ({type(e).__name__}: {e})") from None


def put_folder(local: str, uri: str, *, replace: bool) -> int:
    """Upload the local folder `local` to the prefix `uri`, its files in the same relative
    places; with `replace`, what the prefix held goes first. If the upload fails, what it
    wrote is removed (object stores have no rename: the export appears file by file). Returns
    the number of files uploaded."""
    scheme, path = _split_remote(uri)
    fs = fsspec.filesystem(scheme, **_storage_options(scheme))
    files = [os.path.join(folder, name) for folder, _, names in os.walk(local) for name in names]
    try:
        if replace and fs.exists(path):
            fs.rm(path, recursive=True)
        for file in files:
            fs.put_file(file, f"{path}/{os.path.relpath(file, local).replace(os.sep, '/')}")
    except Exception as e:
        with contextlib.suppress(Exception):  # the error below says what happened
            fs.rm(path, recursive=True)
        raise SourceError(f"{uri}: upload failed ({type(e).__name__}: {e})") from None
    return len(files)


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system and path of a folder given as a local path, s3:// or gs:// URL."""
    if "://" not in uri or uri.startswith("file://"):
        return fsspec.filesystem("file"), os.path.abspath(uri.removeprefix("file://"))
    scheme, path = _split_remote(uri)
    return fsspec.filesystem(scheme, **_storage_options(scheme)), path


def _split_remote(uri: str) -> tuple[str, str]:
    scheme, _, path = uri.partition("://")
    if scheme not in REMOTE_SCHEMES or not path.strip("/"):
        raise SourceError(f"{uri}: not an s3:// or gs:// location")
    return scheme, path.strip("/")
