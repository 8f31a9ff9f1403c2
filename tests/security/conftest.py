"""Fixtures every attack test shares."""

from tests.integration.server.conftest import cheap_password_hashes  # noqa: F401 (autouse)
