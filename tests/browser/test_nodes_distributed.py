"""A node that dies shows as lost on the dashboard: a controller and one node as separate
processes on the test servers (Kafka-protocol broker, Valkey, MongoDB-wire), the node killed
with SIGKILL while the nodes page is open. (On the embedded backends the node lives inside the
controller's process, so there is no node to kill apart from it.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.procs import Cluster
from tests.servers import cluster_env

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, cluster_env())
    try:
        yield c
    finally:
        c.close()


def test_a_killed_node_goes_offline_on_the_nodes_page_without_a_reload(page: Any, cluster: Cluster) -> None:
    from playwright.sync_api import expect

    controller = cluster.controller_and_node()
    page.goto(f"http://127.0.0.1:{controller.port}/#/nodes")
    row = page.locator('table.nodes tr[data-node="node-a"]')
    expect(row).to_have_attribute("data-status", "online")
    page.evaluate("window.__sameDocument = true")
    screenshot(page, "nodes-distributed-online")

    node = next(p for p in cluster.procs if p.name == "node-a")
    node.kill()
    # the lease (node.lease_ttl_s=2.5) runs out, the monitor calls the node lost, the event
    # stream says node.offline and the row changes in place
    expect(row).to_have_attribute("data-status", "offline", timeout=30_000)
    expect(row).to_contain_text("lost")
    expect(page.locator("#live")).to_have_attribute("data-state", "open")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    screenshot(page, "nodes-distributed-node-lost")
