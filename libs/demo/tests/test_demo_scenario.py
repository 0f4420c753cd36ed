"""The demo's data: deterministic for a day, and shaped like what the PBXs really send."""

from __future__ import annotations

import csv
import io
from datetime import date

from tarifa_collector.domain.csv_formats import ASTERISK_COLUMNS
from tarifa_demo import scenario


def test_the_same_day_gives_the_same_records_so_a_second_run_sends_duplicates() -> None:
    day = date(2026, 12, 2)
    assert scenario.smdr_records(scenario.pbx_calls(day, 14)) == scenario.smdr_records(scenario.pbx_calls(day, 14))
    assert scenario.asterisk_master_csv(day) == scenario.asterisk_master_csv(day)


def test_calls_fall_in_the_previous_month_and_today() -> None:
    day = date(2026, 1, 15)
    start, end = scenario.previous_month(day)
    assert (start, end) == (date(2025, 12, 1), date(2026, 1, 1))
    calls = scenario.pbx_calls(day, 14)
    assert all(start <= c.start.date() < end or c.start.date() == day for c in calls)
    assert [c.start.hour for c in calls if c.start.date() == day] == [9, 9, 9]
    assert [c.start.hour for c in scenario.pbx_calls(day, 8) if c.start.date() == day] == [0, 0, 0]


def test_a_transferred_call_is_two_smdr_legs_sharing_a_call_id_the_first_continued() -> None:
    calls = [c for c in scenario.pbx_calls(date(2026, 12, 2), 14) if c.transferred_to]
    first, second = scenario.smdr_records(calls)
    one, two = first.decode().rstrip("\r\n").split(","), second.decode().rstrip("\r\n").split(",")
    assert first.endswith(b"\r\n") and len(one) == 17
    assert one[9] == two[9]  # Call ID
    assert (one[10], two[10]) == ("1", "0")  # Continuation
    assert (one[11], two[11]) == ("E202", "E205")


def test_the_asterisk_file_has_master_csv_columns() -> None:
    rows = list(csv.reader(io.StringIO(scenario.asterisk_master_csv(date(2026, 12, 2)))))
    assert len(rows) == scenario.ASTERISK_CALLS
    assert all(len(row) == len(ASTERISK_COLUMNS[:18]) for row in rows)
    assert {row[14] for row in rows} == {"ANSWERED", "NO ANSWER"}


def test_glns_carry_the_gs1_check_digit() -> None:
    assert scenario.gln("579000043597") == "5790000435975"  # a published GS1 example
    assert scenario.gln("301234500001") == "3012345000017"
