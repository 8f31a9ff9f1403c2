from __future__ import annotations

from dev8.core import errors


def test_every_error_class_is_known_by_its_own_code():
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.Dev8Error)
    ]
    assert {cls.code: cls for cls in classes} == errors.ERRORS_BY_CODE


def test_a_new_subclass_is_known_at_once():
    class Invented(errors.Conflict):
        code = "invented_for_a_test"

    assert errors.errors_by_code()["invented_for_a_test"] is Invented
