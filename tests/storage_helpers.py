"""Helpers for storage API tests: seed objects on the emulator, create storages through the API."""

import io
import json

from tests.fixtures.s3 import s3_admin


def put(endpoint, bucket, key, body):
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    s3_admin(endpoint).put_object(Bucket=bucket, Key=key, Body=body)


def parquet_bytes(rows, row_group_size=None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer, row_group_size=row_group_size)
    return buffer.getvalue()


def create_storage(client, project, config, kind="s3", export=False):
    path = f"/api/storages/{'export/' if export else ''}{kind}/"
    response = client.post(path, {"project": project.id, **config}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def sync(client, storage, kind="s3", export=False, **body):
    path = f"/api/storages/{'export/' if export else ''}{kind}/{storage['id']}/sync"
    response = client.post(path, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def task_data(project):
    return sorted((t.data for t in project.tasks.all()), key=json.dumps)
