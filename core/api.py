"""Shared API pieces: the exception handler, pagination and URL helpers."""

import logging
import re
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.urls import re_path
from rest_framework import parsers, status
from rest_framework.exceptions import ParseError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

logger = logging.getLogger(__name__)

#: How deep task JSON may nest (objects and lists inside each other, the task object being
#: level 1; tasks.importing checks it). Real tasks nest a few levels; some hundreds down, the
#: URI rewriting, the serializers and the JSON encoder recursed past Python's limit, and every
#: answer that includes the task failed. Not a setting: raising it far would bring that back.
MAX_TASK_DEPTH = 100


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser (the API's default, REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): a body
    nested deeper than Python's json reads (RecursionError, about a thousand levels) is a 400
    naming the limit, not a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(
                "JSON parse error - nested too deeply for the parser; "
                f"task data may nest at most {MAX_TASK_DEPTH} levels"
            ) from None


#: `detail` of validation errors, as in Label Studio; the messages are in `validation_errors`.
VALIDATION_ERROR = "Validation error"
#: `detail` of an unexpected error; its traceback is logged under the answer's `id`.
INTERNAL_SERVER_ERROR = "Internal server error"


def error_body(status_code, detail, validation_errors=None):
    """Label Studio's error envelope, the body of every JSON error of the service:
    `{"id", "status_code", "version", "detail", "exc_info", "validation_errors"}`. `id` (a new
    uuid4) names the error in the log; `version` is ours (settings.VERSION);
    `exc_info` is always null (tracebacks go to the log); `validation_errors` (field or
    `non_field_errors` -> messages, as DRF gives them) only on validation errors."""
    body = {
        "id": str(uuid.uuid4()),
        "status_code": status_code,
        "version": settings.VERSION,
        "detail": str(detail),
        "exc_info": None,
    }
    if validation_errors is not None:
        body["validation_errors"] = validation_errors
    return body


def _envelope(data, status_code):
    """The envelope of what DRF's handler answered: `{"detail": "<message>"}` (every exception
    but validation errors, and a ValidationError({"detail": "<message>"})) keeps its message;
    anything else is validation errors, a list becoming `non_field_errors` (Label Studio's rule)."""
    if isinstance(data, dict) and set(data) == {"detail"} and isinstance(data["detail"], str):
        return error_body(status_code, data["detail"])
    return error_body(
        status_code, VALIDATION_ERROR, data if isinstance(data, dict) else {"non_field_errors": list(data)}
    )


def _request_limit_response(exc):
    """The 4xx of a request over one of Django's request limits, naming the limit and its
    setting; None for other errors. Django answers these (SuspiciousOperation) with a 400
    itself, but inside a DRF view they reach this handler."""
    if not isinstance(exc, SuspiciousOperation):
        return None
    logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        detail = (
            f"The request body is larger than {limit} bytes, the most this server accepts "
            "(setting DATA_UPLOAD_MAX_MEMORY_SIZE)"
        )
        return Response(error_body(413, detail), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        detail = (
            f"The request has more than {limit} form fields or query parameters, the most this server "
            "accepts (setting DATA_UPLOAD_MAX_NUMBER_FIELDS)"
        )
    elif isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        detail = (
            f"The request has more than {limit} files, the most this server accepts "
            "(setting DATA_UPLOAD_MAX_NUMBER_FILES)"
        )
    else:
        detail = "Bad request"
    return Response(error_body(400, detail), status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc, context):
    """The API's one exception handler (REST_FRAMEWORK["EXCEPTION_HANDLER"]): every error is
    answered in Label Studio's envelope (`error_body`). DRF's exceptions and Django's Http404 /
    PermissionDenied keep DRF's status, headers (WWW-Authenticate, Retry-After) and messages;
    requests over Django's limits get a 4xx naming the limit; unexpected errors are logged
    with their traceback under the answer's id and answered as a JSON 500 that tells nothing
    of the failure."""
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES, which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    response = _request_limit_response(exc)
    if response is not None:
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        body = error_body(500, INTERNAL_SERVER_ERROR)
        logger.error("Unhandled API error (id %s)", body["id"], exc_info=exc)
        set_rollback()
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    response.data = _envelope(response.data, response.status_code)
    return response


def error_response(status, message, headers=None):
    """A JSON error answer in the API's envelope (`error_body`), for views that build their
    responses themselves (file serving, the JSON 404 of unknown URLs)."""
    return JsonResponse(error_body(status, message), status=status, headers=headers)


class PageNumberPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 10000


# Ids have at most 18 digits: a longer one is out of a bigint's range, and SQLite raises
# (a 500) instead of finding nothing for some lookups. Such a URL is a 404 like any unknown one.
ID_PATTERN = "[0-9]{1,18}"
_CONVERTERS = {"int": ID_PATTERN, "str": "[^/]+"}


def is_id(value):
    """Whether `value` (an int or a string from a query or a body) can name a row: the URLs'
    rule, so that an id out of a bigint's range finds nothing instead of failing the query."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return False
    return re.fullmatch(ID_PATTERN, str(value)) is not None


def path(route, view, name=None):
    """A URL whose trailing slash is optional, as in Label Studio (`/api/projects/1` and `/1/`).
    Takes Django's `<int:name>` / `<str:name>` placeholders."""

    def placeholder(match):
        kind, key = match.group(1), match.group(2)
        return f"(?P<{key}>{_CONVERTERS[kind]})"

    pattern = re.sub(r"<(int|str):(\w+)>", placeholder, route.rstrip("/"))
    return re_path(rf"^{pattern}/?$", view, name=name)
