"""The dashboard's pure parts: the create form's fields as a request, the CSRF tokens, the
images setting, and the templates' escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from dev8.core.errors import InvalidInput
from dev8.core.images import workspace_image
from dev8.core.resources import PRESETS
from dev8.server.settings import Settings
from dev8.server.web.dashboard import forms
from dev8.server.web.dashboard.render import html
from dev8.server.web.dashboard.security import CsrfTokens
from dev8.store.secretbox import new_key

IMAGES = ["dev8/workspace:latest", "team/python:3.12"]


def fields(**values: object) -> forms.CreateFields:
    return forms.CreateFields(**{"name": "web", **values})  # type: ignore[arg-type]


def test_a_form_becomes_a_create_request() -> None:
    wanted = forms.create_request(
        fields(
            size="large",
            image=IMAGES[1],
            idle_minutes="90",
            secret_names=("API_KEY", "", "DB_URL"),
            secret_values=("k", "", "postgres://x"),
        ),
        IMAGES,
    )
    assert (wanted.name, wanted.image, wanted.resources) == ("web", IMAGES[1], PRESETS["large"])
    assert wanted.idle_timeout_s == 5400
    assert wanted.secrets == {"API_KEY": "k", "DB_URL": "postgres://x"}


def test_blank_fields_take_the_defaults() -> None:
    wanted = forms.create_request(fields(), IMAGES)
    assert (wanted.image, wanted.idle_timeout_s, wanted.secrets) == (IMAGES[0], None, {})
    assert forms.create_request(fields(idle_minutes="0"), IMAGES).idle_timeout_s == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"size": "huge"}, "unknown size 'huge'"),
        ({"image": "evil/miner:1"}, "is not offered here"),
        ({"idle_minutes": "-5"}, "not a whole number"),
        ({"idle_minutes": "99999"}, "out of range"),
        ({"secret_names": ("",), "secret_values": ("v",)}, "has a value but no name"),
        ({"secret_names": ("A", "A"), "secret_values": ("1", "2")}, "given twice"),
        ({"secret_names": ("1BAD",), "secret_values": ("v",)}, "1BAD"),
    ],
)
def test_a_bad_form_is_one_line(values: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        forms.create_request(fields(**values), IMAGES)
    assert "\n" not in raised.value.message


def test_csrf_tokens_are_per_session_and_per_server(tmp_path: Path) -> None:
    def tokens(key: str) -> CsrfTokens:
        settings = Settings(secret_key=key, server_dir=tmp_path)
        return CsrfTokens(_Context(settings))  # type: ignore[arg-type]

    key = new_key()
    one, same, other = tokens(key), tokens(key), tokens(new_key())
    assert one.token("session-a") == same.token("session-a")
    assert one.token("session-a") != one.token("session-b")
    assert one.token("session-a") != other.token("session-a")
    assert one.valid("session-a", one.token("session-a"))
    assert not one.valid("session-a", one.token("session-b"))
    assert not one.valid("session-a", "")


class _Context:
    """Only what ``CsrfTokens`` reads of a server context: its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


def test_the_images_setting_keeps_order_and_drops_blanks_and_repeats() -> None:
    assert Settings(dev=True).image_choices() == [workspace_image()]
    chosen = Settings(dev=True, images=" a:1, ,b:2,a:1 ").image_choices()
    assert chosen == ["a:1", "b:2"]


def test_templates_escape_what_they_show() -> None:
    answer = html("_notice.html", error='<script>alert("x")</script>', message="")
    assert b"<script>" not in answer.body and b"&lt;script&gt;" in answer.body
    assert "script-src 'self'" in answer.headers["content-security-policy"]
