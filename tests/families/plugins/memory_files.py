"""A files driver written as a plugin against the public ``files`` family: files kept in
memory (seeded from the config), registered as ``mem/store``. It imports only
``aetherflow.core.api`` and implements the primitives; downloads, uploads and the
``files_*`` steps come from the family."""

import io
import posixpath
import time
from contextlib import contextmanager

from aetherflow.core.api import Field, RemoteFile, RemoteFilesConnector, join_path, name_matches, register_connector, temp_name


@register_connector(kind="mem", driver="store")
class MemoryFiles(RemoteFilesConnector):
    """Files in memory (a test plugin)."""

    config_schema = {"files": Field(dict, default={}, help="path -> text the store starts with")}

    def _connect(self):
        files = {path.strip("/"): (str(text).encode("utf-8"), time.time()) for path, text in self.cfg("files").items()}
        return {"files": files, "dirs": set()}

    def _disconnect(self, client):
        pass

    # -- what the store holds -------------------------------------------------------------

    @property
    def _files(self) -> dict:
        return self.connect()["files"]

    def _dirs(self) -> set[str]:
        found = set(self.connect()["dirs"])
        for path in self._files:
            parent = posixpath.dirname(path)
            while parent:
                found.add(parent)
                parent = posixpath.dirname(parent)
        return found

    def _entry(self, path: str) -> RemoteFile:
        if path in self._files:
            data, mtime = self._files[path]
            return RemoteFile(path=path, name=posixpath.basename(path), is_dir=False, size=len(data), mtime=mtime)
        if path in self._dirs():
            return RemoteFile(path=path, name=posixpath.basename(path), is_dir=True, size=0, mtime=0.0)
        raise FileNotFoundError(f"{path!r} is not in the store")

    # -- the primitives -------------------------------------------------------------------

    def list(self, dir="", pattern="*", recursive=False):
        base = dir.strip("/")
        with self.translate(f"list {dir!r}"):
            if base and base not in self._dirs():
                raise FileNotFoundError(f"no directory {dir!r}")
        entries = []
        for path in sorted(set(self._files) | self._dirs()):
            parent = posixpath.dirname(path)
            inside = parent == base or (recursive and (not base or parent.startswith(base + "/")))
            name = posixpath.basename(path)
            if inside and name_matches(name, pattern):
                entry = self._entry(path)
                entries.append(RemoteFile(join_path(dir, path[len(base) :].lstrip("/")), name, entry.is_dir, entry.size, entry.mtime))
        return sorted(entries, key=lambda e: e.path)

    def stat(self, path):
        with self.translate(f"stat {path!r}"):
            return self._entry(path.strip("/"))

    def exists(self, path):
        key = path.strip("/")
        return key in self._files or key in self._dirs()

    @contextmanager
    def open_read(self, path):
        with self.translate(f"read {path!r}"):
            if path.strip("/") not in self._files:
                raise FileNotFoundError(f"no file {path!r}")
        yield io.BytesIO(self._files[path.strip("/")][0])

    def upload_stream(self, reader, path, *, overwrite=True, progress=None):
        target = path.strip("/")
        with self.translate(f"upload to {path!r}"):
            if not overwrite and target in self._files:
                raise FileExistsError(f"{path!r} exists")
            parts = []
            while chunk := reader.read(64 * 1024):
                parts.append(chunk)
                if progress is not None:
                    progress(len(chunk))
            data = b"".join(parts)
            # Written under a temporary name and renamed, like every files driver.
            tmp = temp_name(target)
            self._files[tmp] = (data, time.time())
            self._files[target] = self._files.pop(tmp)
        return len(data)

    def delete(self, path):
        with self.translate(f"delete {path!r}"):
            del self._files[path.strip("/")]

    def mkdir(self, path, parents=True):
        self.connect()["dirs"].add(path.strip("/"))

    def rename(self, src, dst, *, overwrite=False):
        with self.translate(f"rename {src!r} to {dst!r}"):
            if not overwrite and dst.strip("/") in self._files:
                raise FileExistsError(f"{dst!r} exists")
            self._files[dst.strip("/")] = self._files.pop(src.strip("/"))
