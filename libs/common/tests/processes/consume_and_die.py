"""A consumer process that dies right after its database commit, before committing its offsets.

SQLAlchemy's real `after_commit` event ends the process with exit code 3: the crash window the
inbox exists for.
"""

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).parent))

from tally import create_tables, record

from tarifa_common.db import make_engine, session_factory
from tarifa_common.kafka import EventConsumer, Publisher, Subscription
from tarifa_common.unit_of_work import UnitOfWorkFactory


async def main(bootstrap: str, topic: str, group: str, database_url: str) -> None:
    engine = make_engine(database_url)
    await create_tables(engine)
    sa_event.listen(Session, "after_commit", lambda session: os._exit(3))
    publisher = Publisher(bootstrap, "dying-consumer")
    await publisher.start()
    consumer = EventConsumer(
        Subscription(group=group, topics=(topic,), handlers={"tarifa.test.happened.v1": record}),
        UnitOfWorkFactory(session_factory(engine)),
        publisher,
        bootstrap_servers=bootstrap,
        client_id="dying-consumer",
        session_timeout_ms=3000,
        rebalance_timeout_ms=3000,
    )
    await consumer.start()
    await consumer.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
