"""The sandbox's Prometheus (Debian's `prometheus` package) on loopback, with targets tests can add.

Targets are file-based service discovery: each call to `add_target` writes one JSON file into the
targets directory, which Prometheus watches, so a test adds a scrape target without a reload.
Scrapes run every second so analysis tests see fresh samples quickly.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sandbox.processes import Managed, spawn, wait_until

SCRAPE_INTERVAL = "1s"


def find_binary() -> Path:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("prometheus not found: install Debian's `prometheus` package (make setup does)")
    return Path(found)


@dataclass
class Prometheus:
    root: Path
    port: int
    detached: bool = False
    process: Managed | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.root / "targets"

    def _write_config(self) -> Path:
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [
                {
                    "job_name": "sandbox",
                    "file_sd_configs": [
                        {"files": [str(self.targets_dir / "*.json")], "refresh_interval": SCRAPE_INTERVAL}
                    ],
                }
            ],
        }
        path = self.root / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def start(self) -> None:
        config = self._write_config()
        argv = [
            str(find_binary()),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.root / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--web.enable-lifecycle",
        ]
        self.process = spawn("prometheus", argv, self.root / "prometheus.log", detached=self.detached)
        wait_until(self.process, self._ready, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200

    def add_target(self, name: str, address: str, labels: dict[str, str] | None = None) -> None:
        """Scrape `address` (host:port on loopback) under the job `name`."""
        group = [{"targets": [address], "labels": {"job": name, **(labels or {})}}]
        staged = self.targets_dir / f".{name}.json.tmp"
        staged.write_text(json.dumps(group))
        staged.rename(self.targets_dir / f"{name}.json")  # atomic: Prometheus never reads half a file

    def remove_target(self, name: str) -> None:
        (self.targets_dir / f"{name}.json").unlink(missing_ok=True)
