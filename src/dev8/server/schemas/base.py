"""What every schema family shares: input models that forbid unknown fields, public models
read from records, the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self

from dev8.core.naming import MAX_NAME_LENGTH, NAME_PATTERN

NAME = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN.pattern)
# An image reference as the engine takes it: name[:tag][@digest], no spaces or control
# characters (the engine gets it in a URL).
IMAGE_REF = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$"
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


class Input(BaseModel):
    """A request body: an unknown field is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", str_max_length=65536)


class Public(BaseModel):
    """A response read from a ``dev8.core`` record whose attributes have the same names."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, record: Any) -> Self:
        return cls.model_validate(record)


class ErrorBody(BaseModel):
    error: str = Field(description="Stable code; the SDK raises the matching dev8 error.")
    message: str
