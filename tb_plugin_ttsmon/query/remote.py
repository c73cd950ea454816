"""Log directories in object stores, for readers outside TensorBoard (`ttsmon export/report`).

TensorBoard reads ``s3://`` itself only where TensorFlow is not installed
(its own file layer, with boto3) and ``gs://`` through TensorFlow, so a
reader in a training environment could not open a bucket through
TensorBoard's loader. `fetch_event_files` copies a remote logdir's event
files (only those: no profiles, checkpoints or models) into a local
directory through fsspec, with the layout kept, and the local copy is read
like any logdir.
"""

from __future__ import annotations

import os
import posixpath


def fetch_event_files(url: str, dest: str) -> int:
    """Copies the event files under `url` into `dest`; returns how many.

    Keys whose path would leave `dest` (``..`` parts) are skipped.

    Raises:
      ValueError, ImportError: fsspec cannot open `url`'s store (see
        `stores.check_url`).
      OSError: listing or reading the store failed.
    """
    from tb_plugin_ttsmon import stores

    stores.check_url(url)
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, skip_instance_cache=True)
    root = root.rstrip("/")
    remote: list[str] = []
    local: list[str] = []
    for path in sorted(fs.find(root)):
        if "tfevents" not in posixpath.basename(path):
            continue
        parts = path[len(root) :].strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts):
            continue
        target = os.path.join(dest, *parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        remote.append(path)
        local.append(target)
    if remote:
        fs.get(remote, local)
    return len(remote)
