"""`tarifa rater …` on a real database: load a tariff and a directory from files, re-rate a period with progress."""

import asyncio
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from tarifa_common.testing import unique
from tarifa_rater import handlers
from tarifa_rater.adapters.tables import CallRow
from tarifa_rater.bootstrap import Rater
from tarifa_rater.entrypoints.cli import commands


async def invoke(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, commands(), list(args))
    return result.exit_code, result.output


async def test_files_loaded_by_the_cli_rate_waiting_calls_and_a_rerate_reports_the_new_versions(
    offline_rater: Rater, database_url: str, make_cdr, price_list: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARIFA_RATER_DATABASE_URL", database_url)
    monkeypatch.setenv("TARIFA_RATER_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    tenant = unique("acme")
    async with offline_rater.runtime.units() as uow:
        event = make_cdr(tenant, "r1", billable_seconds=61)
        await handlers.rate_collected_cdr(event, uow, offline_rater.store(uow), offline_rater.numbering)
    (tmp_path / "tariff.csv").write_text(price_list)
    (tmp_path / "cheaper.csv").write_text(price_list.replace("0.12,0.06", "0.10,0.05"))
    (tmp_path / "extensions.csv").write_text("extension,cost_centre\n2001,sales\n")
    period = ("--tenant", tenant, "--from", "2026-11-01T00:00:00Z", "--to", "2026-12-01T00:00:00Z")
    valid = ("--tenant", tenant, "--code", "standard", "--valid-from", "2026-11-01T00:00:00-03:00")

    code, output = await invoke("import-tariff", str(tmp_path / "tariff.csv"), *valid, "--assign-to-tenant")
    assert code == 0, output
    assert "4 rate(s)" in output and "0 waiting call(s) rated" in output, output
    code, output = await invoke("import-extensions", str(tmp_path / "extensions.csv"), "--tenant", tenant)
    assert code == 0, output
    assert "1 extension(s) loaded" in output and "1 waiting call(s) rated" in output, output
    code, output = await invoke("import-tariff", str(tmp_path / "cheaper.csv"), *valid)
    assert code == 0, output
    code, output = await invoke("rerate", *period)
    assert code == 0, output
    assert "examined 1; new versions 1 (first rating 0); still unrated 0; difference -0.022" in output
    code, output = await invoke("rerate", *period)
    assert "examined 1; new versions 0" in output
    async with offline_rater.runtime.units() as uow:
        row = (await uow.session.exec(select(CallRow).where(CallRow.tenant == tenant))).one()
    assert (row.version, str(row.amount)) == (2, "0.16")


async def test_a_bad_tariff_file_is_reported_line_by_line_and_exits_non_zero(
    offline_rater: Rater, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARIFA_RATER_DATABASE_URL", database_url)
    (tmp_path / "bad.csv").write_text("destination,call_class,price_per_minute\nLocal,local,abc\n")
    code, output = await invoke(
        "import-tariff", str(tmp_path / "bad.csv"), "--tenant", "t", "--code", "s", "--valid-from", "2026-11-01T00:00Z"
    )
    assert code == 2
    assert "line 2: price_per_minute: 'abc' is not a number" in output
