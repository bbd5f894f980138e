"""Crash points: a test hook that makes a process kill itself at a named point.

`GSAT_CRASH_AT=NAME[:N]` in a process's environment, read once when this
module is first imported, makes the N-th pass (default 1) of that process
through `at(NAME)` send itself SIGKILL: the process stops there as it would
under `kill -9` or a power cut of that one process, with nothing flushed or
cleaned up.  Unset (the only setting outside tests), a point costs a
comparison with None.  A forked process (a shepherd) inherits the setting
and the count so far.

The points the code passes, by the step they stand after:
  submit.filled     gqsub: the job's temporary directory is filled
  submit.stored     gqsub: the job (an array's first element) is renamed to
                    its id: a single job is accepted
  submit.committed  gqsub: an array's marker is written: the array is accepted
  submit.told       gqsub: the ids are printed and the submit message is in
                    the controller's inbox
  takeon.claimed    controller: a submission is taken on, before its QSUB
  start.saved       controller: `running` is saved, before a shepherd has it
  start.handed      controller: a shepherd has the run
  run.published     shepherd: runs/N.start is published, before the spawn
  run.spawned       shepherd: the job is spawned
  run.recorded      shepherd: runs/N.exit is durable, before anybody is told
  end.saved         controller: the end state is saved, before its event
  end.told          controller: the end's event is recorded, waiters told
  control.hold      controller: a hold is saved (for a running job, before
                    its signal)
  control.release   controller: a release is saved, before its event
  control.delete    controller: a delete is saved (likewise)
  control.signal    controller: a gqsig is saved, before its event
  event.recorded    controller: an event is in events.log (and the outbox)
  event.dispatched  controller: the event's services are started, before
                    the outbox forgets it
tests/test_crashpoints.py holds the same list and checks it against the
calls in the code.  Stdlib only: every layer may import it.
"""

import os

_NAME, _, _COUNT = (os.environ.get("GSAT_CRASH_AT") or "").partition(":")
_name = _NAME or None
_left = int(_COUNT) if _COUNT.isdigit() and int(_COUNT) > 0 else 1


def at(name: str) -> None:
    """Kill this process here if GSAT_CRASH_AT names this point (and pass)."""
    if _name is not None and name == _name:
        _pass()


def _pass() -> None:
    global _left
    _left -= 1
    if _left == 0:
        import signal  # not at the top: this module is on every command's path, signal costs an enum
        os.kill(os.getpid(), signal.SIGKILL)
