"""``manage.py runworker CHANNEL``: Channels' command, with each channel's consumer started at
once instead of at its first message.

A scoring worker (``runworker detection-score``) then loads its model and starts its heartbeat
(``live.heartbeat``, read by ``/readyz``) as soon as it runs, before any stream needs it. This
app comes before ``channels`` in ``INSTALLED_APPS`` so that this command is the one run.
"""

from channels.management.commands.runworker import Command as ChannelsRunworker
from channels.worker import Worker


class EagerWorker(Worker):
    async def handle(self):
        for channel in self.channels:
            self.get_or_create_application_instance(
                channel, {"type": "channel", "channel": channel}
            )
        await super().handle()


class Command(ChannelsRunworker):
    worker_class = EagerWorker
