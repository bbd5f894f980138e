"""Job states, the transitions between them, and the event names.

One table: ALLOWED[(state, action)] says what an action does to a job in a
state.  `jobs.change_state` is the only function that applies it.
Stdlib only.
"""

QUEUED = "queued"
HELD = "held"
RUNNING = "running"
SUSPENDED = "suspended"  # shown for a stopped running job; stored as running + flag
FINISHED = "finished"
FAILED = "failed"
DELETED = "deleted"      # tombstone kept so that the id is never reused
DAMAGED = "damaged"      # shown, never stored: a job whose files cannot be read (gsat.jobs)

ACTIVE = (QUEUED, HELD, RUNNING)
ENDED = (FINISHED, FAILED)
SHOWN = (QUEUED, HELD, RUNNING, SUSPENDED, FINISHED, FAILED, DAMAGED)
STORED = (QUEUED, HELD, RUNNING, FINISHED, FAILED, DELETED)  # what state.json may say

# Events a controller fires (SPEC §6); user events may not take these names.
QSUB = "QSUB"
JOB_START = "JOB_START"
JOB_TERMINATION = "JOB_TERMINATION"
JOB_HOLD = "JOB_HOLD"
JOB_RELEASE = "JOB_RELEASE"
JOB_DELETE = "JOB_DELETE"
JOB_SIGNAL = "JOB_SIGNAL"
JOB_RESTART = "JOB_RESTART"
JOB_FINISHED = "JOB_FINISHED"
JOB_FAILED = "JOB_FAILED"
RESERVED_EVENTS = frozenset({
    QSUB, JOB_START, JOB_TERMINATION, JOB_HOLD, JOB_RELEASE, JOB_DELETE,
    JOB_SIGNAL, JOB_RESTART, JOB_FINISHED, JOB_FAILED,
})

EVENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def valid_event_name(name: str) -> bool:
    """[A-Za-z][A-Za-z0-9_.-]{0,63} (checked without `re`: a tool's start-up)."""
    return 0 < len(name) <= 64 and name[0].isascii() and name[0].isalpha() and set(name) <= EVENT_CHARS

# (state, action) -> new state.  Anything missing is refused (exit 1).
# "hold" of a running job goes through the hold signal first; the controller
# applies the final transition when the run has ended.
ALLOWED = {
    (QUEUED, "start"): RUNNING,
    (QUEUED, "hold"): HELD,
    (FINISHED, "hold"): HELD,
    (FAILED, "hold"): HELD,
    (RUNNING, "hold"): HELD,
    (HELD, "release"): QUEUED,
    (RUNNING, "finish"): FINISHED,
    (RUNNING, "fail"): FAILED,
    (RUNNING, "restart"): QUEUED,
    (RUNNING, "requeue"): QUEUED,  # a start that a crash interrupted before the job ran
    (QUEUED, "reject"): FAILED,    # it cannot start (its job type is unusable): see State.reason
    (QUEUED, "delete"): DELETED,
    (HELD, "delete"): DELETED,
    (RUNNING, "delete"): DELETED,
    (FINISHED, "delete"): DELETED,
    (FAILED, "delete"): DELETED,
}

EVENT_OF = {
    "start": JOB_START,
    "hold": JOB_HOLD,
    "release": JOB_RELEASE,
    "finish": JOB_FINISHED,
    "fail": JOB_FAILED,
    "restart": JOB_RESTART,
    "requeue": None,
    "reject": JOB_FAILED,
    "delete": JOB_DELETE,
}


def next_state(state: str, action: str) -> str | None:
    """The state `action` leads to from `state`, or None when refused."""
    return ALLOWED.get((state, action))
