"""The real Prometheus-side servers (Debian packages) on loopback and free ports.

Each `start_*` returns a `Server` whose `stop()` terminates and waits; the fixtures
in test_prometheus.py call it in a `finally`. Logs go to a file under tmp_path and
are shown when a server does not come up.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deployments"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(
            f"{binary} is not installed: run `make services` (Debian packages prometheus, "
            "prometheus-pushgateway, prometheus-alertmanager)"
        )
    return path


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def get(self, path: str, **params: Any) -> Any:
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()


def _start(name: str, argv: list[str], port: int, log: Path, ready: str = "/-/ready", timeout: float = 30) -> Server:
    fh = log.open("wb")
    proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    fh.close()
    server = Server(name, proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{server.url}{ready}", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"{name} did not come up on port {port}:\n{log.read_text()[-3000:]}")


def start_pushgateway(tmp: Path) -> Server:
    port = free_port()
    # --persistence.file= (empty): Debian's default persists under /var/lib.
    argv = [need("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="]
    return _start("pushgateway", argv, port, tmp / f"pushgateway-{port}.log")


def prometheus_config(
    tmp: Path,
    *,
    pushgateway: Server | None = None,
    alertmanager: Server | None = None,
    interval: str = "1s",
) -> Path:
    """deployments/prometheus/prometheus.yml with the compose host names replaced by
    loopback ports, short intervals, and the rule files by absolute path."""
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    cfg["global"]["scrape_interval"] = interval
    cfg["global"]["evaluation_interval"] = interval
    cfg["rule_files"] = [str(DEPLOY / "prometheus" / f) for f in cfg["rule_files"]]
    if alertmanager is None:
        cfg.pop("alerting")
    else:
        cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{alertmanager.port}"]
    jobs = []
    for job in cfg["scrape_configs"]:
        if job["job_name"] == "pushgateway":
            if pushgateway is None:
                continue
            job["static_configs"][0]["targets"] = [f"127.0.0.1:{pushgateway.port}"]
        elif job["job_name"] == "prometheus":
            continue  # its own port is only known at start; not needed here
        jobs.append(job)
    cfg["scrape_configs"] = jobs
    path = tmp / f"prometheus-{free_port()}.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start_prometheus(tmp: Path, config: Path, data: Path) -> Server:
    port = free_port()
    argv = [
        need("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        # Backfilled test history is weeks old: the default 15d retention would
        # delete it at the first compaction.
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return _start("prometheus", argv, port, tmp / f"prometheus-{port}.log")


def start_alertmanager(tmp: Path, config: Path) -> Server:
    port = free_port()
    data = tmp / f"alertmanager-{port}"
    data.mkdir()
    argv = [
        need("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Otherwise it also listens on 0.0.0.0:9094 for its cluster.
        "--cluster.listen-address=",
    ]
    return _start("alertmanager", argv, port, tmp / f"alertmanager-{port}.log")


def wait_for(predicate: Any, what: str, timeout: float = 30, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def query(prom: Server, expr: str, **params: Any) -> list[dict[str, Any]]:
    resp = prom.get("/api/v1/query", query=expr, **params)
    assert resp["status"] == "success", resp
    return list(resp["data"]["result"])


def query_range(prom: Server, expr: str, start: float, end: float, step: str) -> list[dict[str, Any]]:
    resp = prom.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
    assert resp["status"] == "success", resp
    return list(resp["data"]["result"])
