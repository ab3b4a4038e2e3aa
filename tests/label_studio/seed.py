"""The buckets, containers and objects Label Studio's tests/conftest.py provides, on the
suite's real servers (other tests use uuid-named buckets, so these names are ours alone).

S3 (fixtures s3_with_images, s3_with_jsons, s3_with_hypertext_s3_links,
s3_with_partially_encoded_s3_links, s3_with_unexisted_links, s3_export_bucket,
s3_export_bucket_sse / _kms): Label Studio creates them with in-process moto for every test;
here they live on the moto server and `seed()` empties and refills them before every case.

GCS and Azure: Label Studio replaces the clients with mocks (tests/utils.py gcs_client_mock,
azure_client_mock) in which every bucket or container exists and lists the objects `abc`,
`def` and `ghi`, holding `test_blob_<key>` (GCS; in a bucket whose name ends in `_JSON`, one
JSON task) or that JSON task (Azure). `seed_gcs()` / `seed_azure()` create exactly that, on
the gcp-storage-emulator and on Azurite, for the buckets and containers the cases name.

Label Studio's conftest also puts a Deny policy on the -sse/-kms buckets, but in its own run
no put ever reaches moto: `mock_s3_resource_aes/kms` replace boto3's resource with a mock whose
put() only checks that `ServerSideEncryption` (and `SSEKMSKeyId`) are passed. A moto server
does evaluate such a policy and denies every put over plain http. So the buckets are created
without it, and `sse_problems()` checks afterwards what that mock checked.
"""

from __future__ import annotations

import json
from typing import Dict, List

from botocore.exceptions import ClientError

from tests.fixtures.azure import azure_admin
from tests.fixtures.gcs import gcs_admin
from tests.fixtures.s3 import s3_admin

SEED: Dict[str, Dict[str, str]] = {
    "pytest-s3-images": {
        "image1.jpg": "123",
        "subdir/image1.jpg": "456",
        "subdir/image2.jpg": "789",
        "subdir/another/image2.jpg": "0ab",
    },
    "pytest-s3-jsons": {"test.json": json.dumps({"image_url": "http://ggg.com/image.jpg"})},
    "pytest-s3-jsons-hypertext": {
        "test.json": json.dumps(
            {"text": "<a href=\"s3://pytest-s3-jsons-hypertext/file with /spaces and' / ' / quotes.jpg\"/>"}
        )
    },
    "pytest-s3-json-partially-encoded": {
        "test.json": json.dumps(
            {
                "text": '<a href="s3://pytest-s3-json-partially-encoded/'
                "file with /spaces and' / ' / %2Bquotes%3D.jpg\"/>"
            }
        )
    },
    "pytest-s3-jsons-unexisted_links": {"some-existed-image.jpg": "qwerty"},
    "pytest-export-s3-bucket": {},
    "pytest-export-s3-bucket-with-sse": {},
    "pytest-export-s3-bucket-with-kms": {},
}

#: what label_studio/tests/conftest.py's mock put() requires of every object written there
SSE_EXPECT = {
    "pytest-export-s3-bucket-with-sse": {"ServerSideEncryption": "AES256"},
    "pytest-export-s3-bucket-with-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "test-key-id"},
}


#: the task of the mocks' JSON objects (tests/utils.py sample_json_contents)
MOCK_TASK = {"str_field": "test", "int_field": 123, "dict_field": {"one": "wow", "two": 456}}
MOCK_KEYS = ("abc", "def", "ghi")
GCS_BUCKETS = ("test-gs-bucket", "test-gs-bucket_JSON", "pytest-export-gcs-bucket", "heartex-test")
AZURE_CONTAINERS = ("pytest-azure-images", "pytest-export-azure-bucket")


def gcs_body(bucket: str, key: str) -> str:
    return json.dumps(MOCK_TASK) if bucket.endswith("_JSON") else f"test_blob_{key}"


def _keys(s3, bucket) -> List[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def seed(endpoint: str) -> None:
    s3 = s3_admin(endpoint)
    for bucket, objects in SEED.items():
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        for key in _keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
        for key, body in objects.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def sse_problems(endpoint: str) -> List[str]:
    """Objects of the -sse/-kms export buckets written without the encryption arguments that
    Label Studio's mock put() insists on."""
    s3, problems = s3_admin(endpoint), []
    for bucket, want in SSE_EXPECT.items():
        for key in _keys(s3, bucket):
            head = s3.head_object(Bucket=bucket, Key=key)
            if head.get("ServerSideEncryption") != want["ServerSideEncryption"]:
                problems.append(
                    f"s3://{bucket}/{key}: ServerSideEncryption={head.get('ServerSideEncryption')!r}, "
                    f"want {want['ServerSideEncryption']!r}"
                )
            if "SSEKMSKeyId" in want and not (head.get("SSEKMSKeyId") or "").endswith(want["SSEKMSKeyId"]):
                problems.append(
                    f"s3://{bucket}/{key}: SSEKMSKeyId={head.get('SSEKMSKeyId')!r}, want {want['SSEKMSKeyId']!r}"
                )
    return problems


def seed_gcs(url: str) -> None:
    from google.api_core.exceptions import Conflict

    client = gcs_admin(url)
    for name in GCS_BUCKETS:
        try:
            client.create_bucket(name)
        except Conflict:
            pass
        bucket = client.bucket(name)
        for blob in client.list_blobs(name):
            blob.delete()
        for key in MOCK_KEYS:
            bucket.blob(key).upload_from_string(gcs_body(name, key))


def seed_azure(endpoint: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    service = azure_admin(endpoint)
    for name in AZURE_CONTAINERS:
        try:
            service.create_container(name)
        except ResourceExistsError:
            pass
        container = service.get_container_client(name)
        for blob in container.list_blobs():
            container.delete_blob(blob.name)
        for key in MOCK_KEYS:
            container.upload_blob(key, json.dumps(MOCK_TASK), overwrite=True)
