"""A real S3 API server on 127.0.0.1 for the tests: moto's server mode (`moto[server]`).

`S3Server.start()` runs moto's ThreadedMotoServer on a free loopback port; `env` is the
standard AWS environment that points every client (s3fs, botocore, a `hedgegrid` child
process) at it, with dummy keys; `bucket(name)` creates a bucket. Nothing leaves the machine.
"""

from __future__ import annotations

import os
import secrets
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Iterator

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
        return {"key": self.access_key, "secret": self.secret_key, "client_kwargs": {"endpoint_url": self.endpoint,
                                                                                    "region_name": REGION}}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=REGION)

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running() -> Iterator[S3Server]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

    server = S3Server(port=_free_port())
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=server.port, verbose=False)
    moto.start()
    server._server = moto
    try:
        yield server
    finally:
        moto.stop()


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
