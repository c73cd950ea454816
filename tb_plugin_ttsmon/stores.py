"""Log directory URLs: local or in an object store, shown without credentials, servable by fsspec.

Shared by the recorder (`recorder.objectstore` writes object stores) and the
readers (`query.remote` copies a remote logdir for `ttsmon export/report`),
which must not import each other.
"""

from __future__ import annotations

import re
import urllib.parse

# Schemes that are local paths, not object stores.
_LOCAL_SCHEMES = ("", "file", "local")
# The extras of this package that bring a scheme's fsspec implementation.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}


def url_scheme(path: str) -> str:
    """The scheme of `path` (``"s3"`` for ``s3://b/k``), or ``""`` for a local path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*)://", path)
    return match.group(1).lower() if match else ""


def is_remote(path: str) -> bool:
    """Whether `path` is a URL of a store rather than a local path."""
    return url_scheme(path) not in _LOCAL_SCHEMES


def redact_url(url: str) -> str:
    """`url` without the ``user:password@`` part: what logs and run facts may show."""
    if "://" not in url or "@" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> None:
    """Raises a clear error unless fsspec can open `url`'s store.

    Raises:
      ValueError: fsspec knows no file system of that scheme.
      ImportError: the package that implements it is not installed.
    """
    import fsspec

    scheme = url_scheme(url)
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as err:
        extra = _EXTRAS.get(scheme)
        hint = f"pip install 'tb_plugin_ttsmon[{extra}]'" if extra else str(err)
        raise ImportError(f"{scheme}:// needs its fsspec package: {hint}") from err
    except ValueError as err:
        raise ValueError(
            f"no file system serves {scheme}:// ({redact_url(url)!r}); "
            "use a local path or an object store URL such as s3://bucket/run"
        ) from err
