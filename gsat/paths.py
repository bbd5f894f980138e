"""A file path that is a str, with the few pathlib conveniences gsat uses.

pathlib costs the command-line tools several milliseconds to import (it
pulls in urllib.parse and more); gsat's paths only need joining with `/`
and a handful of queries.  Stdlib only (os).
"""

import os


class Path(str):
    __slots__ = ()

    def __new__(cls, *parts):
        return super().__new__(cls, os.path.join(*map(os.fspath, parts)) if parts else ".")

    def __truediv__(self, other) -> "Path":
        return Path(self, other)

    @property
    def name(self) -> str:
        return os.path.basename(self)

    @property
    def parent(self) -> "Path":
        return Path(os.path.dirname(self) or ".")

    def with_name(self, name: str) -> "Path":
        return Path(os.path.dirname(self), name)

    def exists(self) -> bool:
        return os.path.exists(self)

    def is_file(self) -> bool:
        return os.path.isfile(self)

    def is_dir(self) -> bool:
        return os.path.isdir(self)

    def stat(self) -> os.stat_result:
        return os.stat(self)

    def read_bytes(self) -> bytes:
        with open(self, "rb") as f:
            return f.read()

    def read_text(self) -> str:
        with open(self, encoding="utf-8") as f:
            return f.read()

    def write_text(self, text: str) -> None:
        with open(self, "w", encoding="utf-8") as f:
            f.write(text)

    def write_bytes(self, data: bytes) -> None:
        with open(self, "wb") as f:
            f.write(data)

    def iterdir(self):
        return (Path(self, name) for name in os.listdir(self))

    def glob(self, pattern: str):
        import glob
        return (Path(p) for p in glob.glob(os.path.join(glob.escape(self), pattern)))

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        if parents:
            os.makedirs(self, mode, exist_ok=exist_ok)
        else:
            try:
                os.mkdir(self, mode)
            except FileExistsError:
                if not exist_ok:
                    raise
