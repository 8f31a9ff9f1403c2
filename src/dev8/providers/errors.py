"""The one shape of a backend's error boundary: what escapes a provider method is either a
dev8 error already, or is mapped by the backend's ``translate`` (its SDK's failures), the
cause kept; anything ``translate`` does not know passes unchanged."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from dev8.core.errors import Dev8Error

F = TypeVar("F", bound=Callable[..., Any])
Translate = Callable[[Exception], Dev8Error | None]


def mapped_errors(translate: Translate) -> Callable[[F], F]:
    """A decorator for provider methods that maps their failures with ``translate``."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Dev8Error:
                raise
            except Exception as exc:
                mapped = translate(exc)
                if mapped is None:
                    raise
                raise mapped from exc

        return cast(F, wrapper)

    return decorate
