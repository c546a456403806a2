"""kombu's file-system transport, the Celery broker of the embedded set-up (`make run`),
with each message written atomically.

kombu (5.7) creates a message's file in the queue folder and then writes into it; a
worker polling the folder can take the file in between and read it empty, and an
empty message is an unrecoverable error that stops the worker (kombu issue #1551;
seen in `make run`: "Unrecoverable error: JSONDecodeError('Expecting value ...')",
then the whole demo shut down). Here a message is written under a name the consumer
skips and renamed into the queue once complete: a rename within one file system is
atomic, so a consumer finds a whole message or none.

settings.py selects it with ``CELERY_BROKER_TRANSPORT`` when the broker URL is
``filesystem://``.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A consumer takes only files named "<time>_<id>.<queue>.msg".
PARTIAL_SUFFIX = ".part"


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
