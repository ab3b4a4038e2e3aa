"""The S3 buckets and objects of Label Studio's tests/conftest.py (fixtures s3_with_images,
s3_with_jsons, s3_with_hypertext_s3_links, s3_with_partially_encoded_s3_links,
s3_with_unexisted_links, s3_export_bucket, s3_export_bucket_sse / _kms), on a moto server.

Label Studio creates them with in-process moto for every test; here they live on the suite's
moto server (other tests use uuid-named buckets, so these names are ours alone) and `seed()`
empties and refills them before every case.

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
