"""The Kubernetes provider against a Kubernetes API mock server (``apimock``): every test
here is API mock: no real cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.kubernetes.apimock import Cluster, mock_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with mock_cluster() as made:
        yield made
