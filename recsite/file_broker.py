"""kombu's file-system transport, the Celery broker of the embedded set-up (`make run`),
with each message written atomically.

kombu (5.7) creates a message's file in the queue folder and then writes into it; a
worker polling the folder can take the file in between and read it empty, and an
empty message is an unrecoverable error that stops the worker (kombu issue #1551;
seen in `make run`: "Unrecoverable error: JSONDecodeError('Expecting value ...')",
then the whole demo shut down). Here a message is written under a name the consumer
skips and renamed into the queue once complete: a rename within one file system is
atomic, so a consumer finds a whole message or none.

settings.py selects it (``TRANSPORT``, with ``transport_options``) when the broker
URL is ``filesystem://``; the tests that point a process at a broker of their own use
the same two.
"""

import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

TRANSPORT = "recsite.file_broker:Transport"  # Celery's broker_transport
# A consumer takes only files named "<time>_<id>.<queue>.msg".
PARTIAL_SUFFIX = ".part"


def transport_options(broker_dir: Path) -> dict[str, Any]:
    """Celery's broker_transport_options for a file-system broker kept in ``broker_dir``
    (its folders are made here)."""
    folders = {name: broker_dir / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        # kombu's exchange tables; its default is "control" relative to the working directory.
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0.05,
    }


class Channel(filesystem.Channel):
    # kombu's own filesystem.Channel names the parameter differently from its base class.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``payload`` onto ``queue``: written in full, then renamed into place."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        partial = path + PARTIAL_SUFFIX
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, path)
        except OSError as error:
            raise ChannelError(f"Cannot add file {path!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
