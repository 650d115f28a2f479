"""test_cluster.py's tests on the three-node RabbitMQ 4.0.x cluster (tests/cluster.py), in a file
of their own so that they run beside the 3.x ones."""

from __future__ import annotations

import pytest
from cluster import RABBIT4_CLUSTER
from test_cluster import *  # noqa: F403  (the same tests and fixtures)
from test_cluster import cluster_vhost_on


@pytest.fixture(scope="session", params=[RABBIT4_CLUSTER], ids=["rabbit4"])
def cluster_vhost(request):  # noqa: F811  (this file's cluster: the 4.x one)
    yield from cluster_vhost_on(request.param)
