"""The ACI provider wired to the ARM stand-in (``armstandin``: not Azure), with the real SDK
clients over real HTTPS and a static token: what the contract suite and the provider's tests
run against."""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dev8.providers.aci.client import make_api
from dev8.providers.aci.provider import AciProvider
from dev8.providers.aci.settings import aci_settings
from tests.integration.aci.armstandin import ArmState, Runner, StaticToken, arm_standin

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "dev8-test"
SUBNET = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
    "Microsoft.Network/virtualNetworks/dev8/subnets/workspaces"
)


def standin_environment(records: Path) -> dict[str, str]:
    return {
        "DEV8_ACI_SUBSCRIPTION_ID": SUBSCRIPTION,
        "DEV8_ACI_RESOURCE_GROUP": RESOURCE_GROUP,
        "DEV8_ACI_LOCATION": "westeurope",
        "DEV8_ACI_SUBNET_ID": SUBNET,
        "DEV8_ACI_STORAGE_ACCOUNT": "dev8storage",
        "DEV8_ACI_KEY": secrets.token_urlsafe(32),
        "DEV8_ACI_RECORDS_DIR": str(records),
        "DEV8_ACI_START_TIMEOUT": "60",
    }


@dataclass
class AciStandIn:
    provider: AciProvider
    state: ArmState

    def leftovers(self, workspace_id: str) -> set[str]:
        """What of the workspace, shares aside, is left: its group and its record."""
        group = f"dev8-{workspace_id}"
        found = {f"group {group}"} if group in self.state.groups else set()
        if self.provider.records.path(workspace_id).exists():
            found.add(f"record {workspace_id}")
        return found


@contextmanager
def aci_standin(runner: Runner | None = None) -> Iterator[AciStandIn]:
    with tempfile.TemporaryDirectory(prefix="dev8-aci-") as records, arm_standin(runner) as arm:
        settings = aci_settings(standin_environment(Path(records)))
        api = make_api(
            StaticToken(),
            settings.subscription_id,
            arm.url,
            connection_verify=arm.ca_file,
            polling_interval=0.05,
        )
        yield AciStandIn(AciProvider(api, settings), arm.state)
