"""Prints `export ...` lines choosing the database and Redis the test suite runs against:
the local PostgreSQL and Redis when they answer (as on CI), else SQLite and in-process jobs.
Variables already set in the environment win."""

import os
import sys

PG_URL = "postgres://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own: the suite flushes it


def postgres_answers():
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=2).close()
        return True
    except Exception as e:  # noqa: BLE001 - any failure means "not usable"
        print(f"PostgreSQL not usable ({e.__class__.__name__}): tests run on SQLite", file=sys.stderr)
        return False


def redis_answers():
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception as e:  # noqa: BLE001
        print(f"Redis not usable ({e.__class__.__name__}): jobs run in-process", file=sys.stderr)
        return False


exports = {}
if "DATABASE_URL" not in os.environ and postgres_answers():
    exports["DATABASE_URL"] = PG_URL
if "REDIS_URL" not in os.environ and redis_answers():
    exports["REDIS_URL"] = REDIS_URL
    exports.setdefault("RQ_ASYNC", os.environ.get("RQ_ASYNC", "false"))  # jobs run through Redis at once
for name, value in exports.items():
    print(f"export {name}='{value}'")
