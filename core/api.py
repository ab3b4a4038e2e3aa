"""Shared API pieces: the exception handler, pagination and URL helpers."""

import logging
import re

from django.http import JsonResponse
from django.urls import re_path
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """DRF's handler, plus: unexpected errors are logged and answered as a JSON 500 instead
    of an HTML page, so clients always get JSON."""
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
