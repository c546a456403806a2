"""The embedded set-up's Celery broker (recsite.file_broker): messages go through the
queue folder whole, and a consumer never finds one half written (kombu issue #1551
stopped the demo's worker with an empty message)."""

import contextlib
from queue import Empty

import pytest
from kombu import Connection
from kombu.utils import json as kombu_json

from recsite import file_broker


@pytest.fixture
def broker(tmp_path):
    options = file_broker.transport_options(tmp_path)
    with Connection("filesystem://", transport=file_broker.TRANSPORT, transport_options=options) as connection:
        yield connection, tmp_path / "queue"


def test_a_message_goes_through_whole(broker):
    connection, _ = broker
    with connection.SimpleQueue("tasks") as queue:
        queue.put({"task": "embed", "products": list(range(1000))})
        message = queue.get(timeout=1)
        assert message.payload == {"task": "embed", "products": list(range(1000))}
        message.ack()
        with pytest.raises(Empty):
            queue.get(timeout=0.1)


def test_a_consumer_polling_while_a_message_is_written_finds_none(broker, monkeypatch):
    connection, folder = broker
    producer, consumer = connection.channel(), connection.channel()
    found = []

    def serialise_while_the_consumer_polls(payload):
        # The producer is writing this message right now; the worker polls the queue.
        with contextlib.suppress(Empty):
            found.append(consumer._get("tasks"))
        return kombu_json.dumps(payload)

    monkeypatch.setattr(file_broker, "dumps", serialise_while_the_consumer_polls)
    producer._put("tasks", {"body": "x" * 100_000})
    assert found == []
    assert [path.suffix for path in folder.iterdir()] == [".msg"]
    assert consumer._get("tasks") == {"body": "x" * 100_000}


def test_the_embedded_set_up_uses_it(settings):
    from recsite.celery import app

    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("the broker is not the file system here")
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, file_broker.Transport)
