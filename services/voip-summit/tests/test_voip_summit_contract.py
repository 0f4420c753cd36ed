"""The Summit contract kept in the repository is the one the simulator serves."""

import json
from pathlib import Path

from tarifa_voip_summit.simulator import create_simulator

SPEC = Path(__file__).parents[1] / "summit-api.json"


def test_the_committed_summit_contract_matches_the_simulator() -> None:
    committed = json.loads(SPEC.read_text())
    assert committed == json.loads(json.dumps(create_simulator().openapi())), (
        "the Summit contract changed: run `tarifa voip-summit summit-spec` and commit summit-api.json"
    )


def test_the_contract_names_summits_own_concepts() -> None:
    paths = set(json.loads(SPEC.read_text())["paths"])
    assert {
        "/api/v1/partitions",
        "/api/v1/partitions/{code}/categories",
        "/api/v1/categories",
        "/api/v1/licences",
        "/api/v1/plans",
        "/api/v1/cost-centres",
        "/api/v1/terminals",
        "/api/v1/terminals/{terminal_id}",
        "/api/v1/terminals/{terminal_id}/credential",
        "/api/v1/terminals/{terminal_id}/dids/{number}",
        "/api/v1/ports",
    } <= paths
