"""The catalogue: local (IXC stable) and live from Summit (beta), cost centres without case, number ranges."""

from hypothesis import given
from hypothesis import strategies as st
from voip_summit_support import Service

from tarifa_voip_summit.domain.model import NumberRange


async def test_live_mode_lists_summits_catalogue_and_limits_categories_to_the_partitions(service: Service) -> None:
    integration = await service.integration(mode="live")
    await service.http.post(
        "/v1/number-ranges", json={"name": "RJ", "prefix": "5521", "first": "20000000", "last": "20000009"}
    )
    partitions = (await service.http.get(f"/v1/integrations/{integration}/summit/partitions")).json()
    assert {p["code"] for p in partitions} == {"SP-CAPITAL", "RJ"}
    categories = (await service.http.get(f"/v1/integrations/{integration}/summit/partitions/RJ/categories")).json()
    assert [c["code"] for c in categories] == ["LIVRE", "LOCAL"]
    plans = (await service.http.get(f"/v1/integrations/{integration}/summit/plans")).json()
    assert [p["code"] for p in plans] == ["FIXO-100", "FIXO-ILIM"]

    body = service.line_body(integration, number="+552120000001", partition="RJ", plan="FIXO-ILIM")
    refused = await service.http.post("/v1/lines", json={**body, "category": "BLOQ"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "category"
    assert "choose ['LIVRE', 'LOCAL']" in refused.json()["errors"][0]["problem"]
    unknown = await service.http.post("/v1/lines", json={**body, "partition": "MG"})
    assert unknown.json()["errors"][0]["field"] == "partition"

    created = await service.http.post("/v1/lines", json={**body, "category": "LOCAL"})
    assert created.status_code == 201, created.text
    line = await service.applied(created.json()["id"])
    assert service.summit.state.terminals[line["terminal_id"]].category == "LOCAL"


async def test_cost_centres_are_one_whatever_their_case(service: Service) -> None:
    first = await service.http.post("/v1/catalogue/cost-centres", json={"code": "Default"})
    again = await service.http.post("/v1/catalogue/cost-centres", json={"code": "DEFAULT"})
    assert (first.status_code, again.status_code) == (201, 409)
    assert [c["code"] for c in (await service.http.get("/v1/catalogue/cost-centres")).json()] == ["Default"]


async def test_overlapping_ranges_and_reversed_bounds_are_refused_naming_the_field(service: Service) -> None:
    ok = await service.http.post(
        "/v1/number-ranges", json={"name": "A", "prefix": "5511", "first": "30000000", "last": "30000099"}
    )
    overlap = await service.http.post(
        "/v1/number-ranges", json={"name": "B", "prefix": "5511", "first": "30000050", "last": "30000150"}
    )
    reversed_ = await service.http.post(
        "/v1/number-ranges", json={"name": "C", "prefix": "5511", "first": "30000200", "last": "30000100"}
    )
    assert ok.status_code == 201
    assert (overlap.status_code, overlap.json()["errors"][0]["field"]) == (422, "first")
    assert (reversed_.status_code, reversed_.json()["errors"][0]["field"]) == (422, "last")


@given(first=st.integers(0, 99_999_000), size=st.integers(1, 999), index=st.integers(0, 998))
def test_every_number_of_a_range_is_in_it_and_its_neighbours_outside_are_not(first: int, size: int, index: int) -> None:
    number_range = NumberRange.checked("r", "5511", f"{first:08d}", f"{first + size - 1:08d}")
    inside = number_range.number_at(index % size)
    assert number_range.contains(inside)
    assert not number_range.contains(f"5511{first + size:08d}")
    assert not number_range.contains(f"5521{first:08d}")
    if first > 0:
        assert not number_range.contains(f"5511{first - 1:08d}")
