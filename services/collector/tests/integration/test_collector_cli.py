"""`tarifa collector ...`: add a source, import a file (twice), list health, replay; all on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tarifa_collector.entrypoints.cli import commands
from tarifa_collector.fake_ipoffice import smdr_line


def outbox_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "db" / "collector.db") as connection:
        return int(connection.execute("SELECT count(*) FROM tarifa_outbox WHERE topic = 'cdr.raw'").fetchone()[0])


def test_a_file_imported_twice_is_published_once_and_a_replay_publishes_it_again(tmp_path: Path) -> None:
    runner = CliRunner()
    app = commands()
    data = ["--tenant", "acme", "--data-dir", str(tmp_path)]
    added = runner.invoke(app, ["sources", "add", "pbx-files", "--kind", "http", *data])
    assert added.exit_code == 0, added.output
    cdr_file = tmp_path / "smdr.txt"
    cdr_file.write_bytes(b"".join(smdr_line(7000 + n) for n in range(5)) + b"garbage\r\n")

    first = runner.invoke(app, ["import", "pbx-files", str(cdr_file), *data])
    assert first.exit_code == 0, first.output
    assert "5 accepted, 0 already known, 1 rejected" in first.output
    second = runner.invoke(app, ["import", "pbx-files", str(cdr_file), *data])
    assert "0 accepted, 5 already known, 1 rejected" in second.output
    assert outbox_rows(tmp_path) == 5

    listed = runner.invoke(app, ["sources", "list", *data], env={"COLUMNS": "200"})
    assert "pbx-files" in listed.output
    assert "│ 5 " in listed.output  # records today

    replayed = runner.invoke(
        app, ["replay", "pbx-files", "--start", "2026-11-01T00:00:00", "--end", "2026-12-01T00:00:00", *data]
    )
    assert replayed.exit_code == 0, replayed.output
    assert "5 calls queued" in replayed.output
    assert outbox_rows(tmp_path) == 10


def test_an_unknown_source_is_named_in_the_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        commands(),
        [
            "replay",
            "nope",
            "--start",
            "2026-11-01",
            "--end",
            "2026-12-01",
            "--tenant",
            "acme",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2
    assert "source 'nope' does not exist" in result.output


def test_a_source_is_disabled_enabled_and_deleted_keeping_its_archive(tmp_path: Path) -> None:
    runner = CliRunner()
    app = commands()
    data = ["--tenant", "acme", "--data-dir", str(tmp_path)]
    added = runner.invoke(
        app, ["sources", "add", "pbx-sp", "--kind", "http", "--country-code", "55", "--area-code", "11", *data]
    )
    assert added.exit_code == 0, added.output
    cdr_file = tmp_path / "smdr.txt"
    cdr_file.write_bytes(smdr_line(9001, dialled="987654321"))
    assert "1 accepted" in runner.invoke(app, ["import", "pbx-sp", str(cdr_file), *data]).output

    def column(query: str) -> list[object]:
        with sqlite3.connect(tmp_path / "db" / "collector.db") as connection:
            return [row[0] for row in connection.execute(query)]

    assert '"called_e164":"+5511987654321"' in str(column("SELECT payload FROM collector_call"))
    assert runner.invoke(app, ["sources", "disable", "pbx-sp", *data]).exit_code == 0
    assert column("SELECT enabled FROM collector_source") == [0]
    assert runner.invoke(app, ["sources", "enable", "pbx-sp", *data]).exit_code == 0
    assert column("SELECT enabled FROM collector_source") == [1]
    deleted = runner.invoke(app, ["sources", "delete", "pbx-sp", *data])
    assert deleted.exit_code == 0, deleted.output
    assert "deleted, its archive kept" in deleted.output
    assert column("SELECT id FROM collector_source") == []
    assert len(column("SELECT id FROM collector_archive WHERE source_id = 'pbx-sp'")) == 1
    assert len(column("SELECT record_id FROM collector_call WHERE source_id = 'pbx-sp'")) == 1
    again = runner.invoke(app, ["sources", "delete", "pbx-sp", *data])
    assert again.exit_code == 2
    assert "source 'pbx-sp' does not exist" in again.output
