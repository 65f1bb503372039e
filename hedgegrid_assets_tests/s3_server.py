"""A real S3 API server on 127.0.0.1 for the tests: moto's server mode (`moto[server]`).

`running()` starts `moto_server` in its own process on a free loopback port; `env` is the
standard AWS environment that points every client (s3fs, botocore, a `hedgegrid` child
process) at it, with dummy keys; `bucket(name)` creates a bucket. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    port: int
    # A secret that must never show up anywhere the project writes or prints.
    secret_key: str = field(default_factory=lambda: "hgsecret" + secrets.token_hex(16))
    access_key: str = "testing-access-key"
    _server: object = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            # No config or credential file of the machine's own: only these.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    @property
    def storage_options(self) -> dict:
        """What fsspec/Nautilus take to read the catalog (given by the reader, as a user would)."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": REGION},
        }

    @property
    def rust_storage_options(self) -> dict[str, str]:
        """What Nautilus's Rust (DataFusion object_store) readers take: trades, quotes, bars, marks."""
        return {"endpoint_url": self.endpoint, "access_key_id": self.access_key, "secret_access_key": self.secret_key,
                "region": REGION, "allow_http": "true"}  # fmt: skip

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
        )

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running() -> Iterator[S3Server]:
    """moto's server in its own process (`moto_server`, from moto[server]): Nautilus's Rust
    readers block the calling thread with the GIL held, so an in-process (threaded) server
    would never answer them."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    server = S3Server(port=_free_port())
    binary = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(server.port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    server._server = proc
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {server.endpoint}") from None
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def aws_env(server: S3Server) -> Iterator[None]:
    """This process's AWS environment pointed at `server` for the block."""
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
