"""A throw-away PostgreSQL database for a benchmark run (`--database-url`)."""

from urllib.parse import urlsplit, urlunsplit


def postgres_database(admin_url, name):
    """Create database `name` on the server of `admin_url` (dropping any leftover of that
    name first); (its URL, a function that drops it)."""
    import psycopg

    parts = urlsplit(admin_url)
    conninfo = urlunsplit(parts._replace(scheme="postgresql"))

    def recreate(create=True):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if create:
                conn.execute(f"CREATE DATABASE {name}")

    recreate()
    return urlunsplit(parts._replace(path=f"/{name}")), lambda: recreate(create=False)
