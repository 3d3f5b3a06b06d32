"""Management commands that are batch work: they yield the CPU to the live path."""

from django.core.management.base import BaseCommand

from eyescream_site.cpu_priority import apply_batch_priority


class BatchCommand(BaseCommand):
    """Run from the command line, the process takes ``EYESCREAM_BATCH_PRIORITY`` first
    (``SCHED_IDLE`` by default). Called in another process (``call_command``), it leaves that
    process's priority alone: the process is not the command's to lower for good."""

    def run_from_argv(self, argv):
        apply_batch_priority()
        return super().run_from_argv(argv)
