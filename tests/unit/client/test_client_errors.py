"""The SDK turns every error code the API sends back into the same dev8 class."""

import httpx
import pytest

from dev8.client.api import error_from
from dev8.core.errors import ERRORS_BY_CODE, Dev8Error


def answer(status: int, **kw) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://server/x"), **kw)


@pytest.mark.parametrize("code", sorted(ERRORS_BY_CODE))
def test_every_code_maps_back_to_its_class(code):
    cls = ERRORS_BY_CODE[code]
    error = error_from(answer(cls.http_status, json={"error": code, "message": "one line"}))
    assert type(error) is cls and error.message == "one line"


def test_anything_else_is_a_plain_error_naming_the_status():
    error = error_from(answer(502, text="<html>Bad Gateway</html>"))
    assert type(error) is Dev8Error and "HTTP 502" in error.message
    unknown = error_from(answer(418, json={"error": "teapot", "message": "short and stout"}))
    assert type(unknown) is Dev8Error and unknown.message == "short and stout"
