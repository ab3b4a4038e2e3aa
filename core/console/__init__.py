"""The storage console: server-rendered page shells under `/` (login, projects, a project's
tasks and storages, one task), whose data comes from the REST API through fetch() with the
session cookie. It imports no app: everything it shows is read from `/api/...` in the browser."""
