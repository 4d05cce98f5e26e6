"""A real S3 and Glue HTTP endpoint for tests: moto's server on 127.0.0.1, started by the test, and
the credentials the standard AWS chain then finds in the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from api_server import free_port

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1, for as long as the block runs; yields its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def set_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)


def s3_with_bucket(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str) -> Any:
    """The test credentials in the environment, and a boto3 S3 client of `endpoint` on which
    `bucket` exists."""
    set_aws_env(monkeypatch)
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    return client
