"""Shared API pieces: the exception handler, pagination and URL helpers."""

import logging
import re

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


def _request_limit_response(exc):
    """The 4xx of a request over one of Django's request limits, naming the limit and its
    setting; None for other errors. Django answers these (SuspiciousOperation) with a 400
    itself, but inside a DRF view they reach this handler."""
    if not isinstance(exc, SuspiciousOperation):
        return None
    logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response(
            {
                "detail": f"The request body is larger than {limit} bytes, the most this server accepts "
                "(setting DATA_UPLOAD_MAX_MEMORY_SIZE)"
            },
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
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
    return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)


def exception_handler(exc, context):
    """DRF's handler, plus: requests over Django's limits get a 4xx naming the limit; unexpected
    errors are logged and answered as a JSON 500 instead of an HTML page, so clients always
    get JSON."""
    # Imported here: rest_framework.views reads DEFAULT_PARSER_CLASSES, which names this module.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = _request_limit_response(exc)
    if response is not None:
        return response
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response({"detail": "Internal server error"}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return response


def error_response(status, message):
    """A JSON error answer shaped like DRF's, for views that build their responses themselves."""
    return JsonResponse({"detail": message}, status=status)


class PageNumberPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 10000


# Ids have at most 18 digits: a longer one is out of a bigint's range, and SQLite raises
# (a 500) instead of finding nothing for some lookups. Such a URL is a 404 like any unknown one.
_CONVERTERS = {"int": "[0-9]{1,18}", "str": "[^/]+"}


def path(route, view, name=None):
    """A URL whose trailing slash is optional, as in Label Studio (`/api/projects/1` and `/1/`).
    Takes Django's `<int:name>` / `<str:name>` placeholders."""

    def placeholder(match):
        kind, key = match.group(1), match.group(2)
        return f"(?P<{key}>{_CONVERTERS[kind]})"

    pattern = re.sub(r"<(int|str):(\w+)>", placeholder, route.rstrip("/"))
    return re_path(rf"^{pattern}/?$", view, name=name)
