"""A batch prepared in steps (`handlers.prepare_steps`): it yields between steps, and the steps change nothing."""

import pickle
from collections.abc import Generator

from tarifa_collector.domain.records import SourceContext
from tarifa_collector.domain.sources import RecordFormat
from tarifa_collector.fake_ipoffice import smdr_line
from tarifa_collector.handlers import (
    PREPARE_STEP,
    PreparedBatch,
    from_handback,
    handback,
    next_step,
    prepare_lines,
    prepare_steps,
)

SOURCE = SourceContext(tenant="acme", source_id="pbx-hq", source_kind="smdr_listener", time_zone="America/Sao_Paulo")


def run(steps: Generator[None, None, PreparedBatch]) -> tuple[int, PreparedBatch]:
    yields = 0
    while (batch := next_step(steps)) is None:
        yields += 1
    return yields, batch


def test_a_transfer_whose_legs_are_parsed_in_different_steps_is_one_call_of_both_legs() -> None:
    lines = [smdr_line(7000 + n) for n in range(2 * PREPARE_STEP + 100)]
    lines.insert(PREPARE_STEP - 2, smdr_line(9000, connected="00:00:40", continuation=1))  # line 499: step 1
    lines.insert(PREPARE_STEP + 50, smdr_line(9000, connected="00:01:00", ring=30, party1="E204"))  # line 551: step 2
    lines.append(lines[10])

    yields, batch = run(prepare_steps(SOURCE, RecordFormat.AVAYA_SMDR, lines))

    # parsing: before lines 500 and 1000 (of 1,103); grouping: before calls 500 and 1000 (of 1,101)
    assert yields == 4
    assert batch.duplicates == 1
    assert not batch.rejections
    assert len(batch.calls) == 2 * PREPARE_STEP + 101
    transfer, _ = batch.calls["9000"]
    assert transfer.data["billable_seconds"] == 100
    assert len(transfer.data["legs"]) == 2
    assert len(batch.archive) == len(lines) - 1  # every record once, the duplicate line not again


def test_a_batch_handed_back_by_a_worker_is_the_batch_prepared_in_the_service() -> None:
    lines = [smdr_line(7000 + n) for n in range(20)]
    lines.insert(3, smdr_line(9000, connected="00:00:40", continuation=1))  # a transfer, both legs here
    lines.insert(9, smdr_line(9000, connected="00:01:00", ring=30, party1="E204"))
    lines.append(smdr_line(9100, connected="00:00:20", continuation=1))  # its last record comes later
    lines.append(lines[5])  # a duplicate
    lines.append(b"not,an,smdr,record\r\n")  # a rejection
    here = prepare_lines(SOURCE, RecordFormat.AVAYA_SMDR, lines, incomplete=[b"2026/11/02 09:"])

    # What crosses the pipe is pickled, as the process pool does.
    handed = pickle.loads(pickle.dumps(handback(here)))
    there = from_handback(handed, SOURCE, RecordFormat.AVAYA_SMDR, lines)

    assert here.duplicates == there.duplicates == 1
    assert len(here.rejections) == 2  # the line that is no record, and the fragment cut by the drop
    assert there.rejections == here.rejections
    assert there.archive == here.archive
    assert there.finals == here.finals
    assert list(there.calls) == list(here.calls)
    for key, (call, payload) in here.calls.items():
        again, payload_again = there.calls[key]
        assert payload_again == payload
        assert (again.record_id, again.tenant, again.source_id, again.call_id, again.started_at, again.data) == (
            call.record_id,
            call.tenant,
            call.source_id,
            call.call_id,
            call.started_at,
            call.data,
        )
    assert "9100" not in there.calls and any(row.call_id == "9100" for row in there.archive)
