"""S3-compatible object storage (boto3). A PUT is atomic in S3: readers see the whole
object or none; botocore retries transient failures (standard mode, bounded attempts)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from standby.backup.errors import BackupError, StorageUnavailable
from standby.backup.storage.base import Storage, StoredObject


class S3Storage(Storage):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        attempts: int = 4,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix} at {endpoint or 'AWS'}"
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                retries={"max_attempts": attempts, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def _fail(self, action: str, name: str, exc: Exception) -> BackupError:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return BackupError(f"object {name} is missing from {self.description}")
            return StorageUnavailable(f"S3 refused to {action} {name} ({self.description}): {exc}")
        if isinstance(exc, EndpointConnectionError):
            return StorageUnavailable(
                f"cannot reach S3 ({self.description}): {exc}; check backup.s3_endpoint "
                "and that the service is up"
            )
        if isinstance(exc, NoCredentialsError):
            return StorageUnavailable(
                f"no S3 credentials for {self.description}: set s3_access_key and "
                "s3_secret_key in the secrets file (or the AWS_* environment variables)"
            )
        return StorageUnavailable(f"S3 error on {action} {name} ({self.description}): {exc}")

    def put(self, name: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("write", name, exc) from exc

    def get(self, name: str) -> bytes:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
            return bytes(resp["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("read", name, exc) from exc

    def list(self, prefix: str) -> list[StoredObject]:
        out: list[StoredObject] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    out.append(StoredObject(item["Key"][len(self.prefix) :], int(item["Size"])))
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("list", prefix or "(all)", exc) from exc
        return sorted(out, key=lambda o: o.name)

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        except (BotoCoreError, ClientError) as exc:
            raise self._fail("delete", name, exc) from exc
