"""A directory laid out the way the kubelet mounts a Secret, and updated the way it does.

Each key is a symlink `<key> -> ..data/<key>`; `..data` is a symlink to a timestamped directory
holding the files. An update writes a new timestamped directory and renames a new symlink over
`..data`, so a reader sees the old set of files or the new one, never a mix.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from delivery import tls


def mount(volume: Path, material: tls.ServingCertificate) -> None:
    """Write `material` (ca.crt, tls.crt, tls.key) into `volume`, swapping `..data` atomically."""
    volume.mkdir(parents=True, exist_ok=True)
    version = volume / f"..{uuid.uuid4().hex}"
    version.mkdir()
    files = {"ca.crt": material.ca, "tls.crt": material.certificate, "tls.key": material.key}
    for name, content in files.items():
        (version / name).write_bytes(content)
    staged = volume / "..data_tmp"
    staged.symlink_to(version.name)
    previous = (volume / "..data").resolve() if (volume / "..data").is_symlink() else None
    os.replace(staged, volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")
    if previous is not None:
        for leftover in previous.iterdir():
            leftover.unlink()
        previous.rmdir()
