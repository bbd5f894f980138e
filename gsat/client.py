"""What every command-line tool does to reach the controllers: open the
config and GSAT_HOME, autostart the local controller, send a message to the
controller that owns a job, and wait for its answer with a deadline.

Never imports the controller; it starts one as a separate process.
"""

from gsat import config as configmod, configcheck, crashpoint, daemon, jobs, messages
from gsat.channel import open_channel
from gsat.errors import Damaged, GsatError, NoSuchJob, UsageError
from gsat.layout import Layout
from gsat.record import Record


class Context(Record):
    __slots__ = ()
    FIELDS = {"config": None, "layout": None}


CHUNK = 500  # ids per message: fits a SysV message of 8 KiB and its answer a FIFO write


def context() -> Context:
    config = configmod.load()
    layout = Layout(config.home, config.host)
    layout.ensure()
    return Context(config=config, layout=layout)


def with_timeout(ctx: Context, seconds: float) -> Context:
    """The same context with another answer timeout."""
    values = {**ctx.config.values, "timeout": seconds}
    return ctx.replace(config=ctx.config.replace(values=values))


def ensure_controller(ctx: Context) -> None:
    """Start this host's controller when none runs and the config allows it."""
    if ctx.config["autostart"] and daemon.running_pid(ctx.layout) is None:
        daemon.spawn(ctx.layout)


def channel(ctx: Context, host: str | None = None):
    """The channel to `host`'s controller (this host's is started if need be)."""
    host = host or ctx.config.host
    if not configcheck.valid_host(host):  # it names a spool directory and a column of gqnodes
        raise UsageError(f"invalid host name {host!r} (expected [A-Za-z0-9][A-Za-z0-9._-]{{0,63}})")
    if host == ctx.config.host:
        ensure_controller(ctx)
    else:
        ctx.layout.ensure(host)
    return open_channel(ctx.config, ctx.layout, host)


def request(ctx: Context, msg: messages.Message, host: str | None = None) -> messages.Answer:
    return channel(ctx, host).request(msg, ctx.config["timeout"])


def store_and_notify(ctx: Context, spec: dict, script: bytes, count: int,
                     stored=None) -> tuple[list[int], str | None]:
    """Store the job (or its `count` array elements) and tell its controller.

    `stored(ids)` is called once they are stored, before the controller is
    told (gqsub prints the ids there: a submitter killed after its array is
    stored whole has printed them, or at once would have).  Returns the ids
    and, when the controller could not be told, a warning: the jobs are
    stored, and their controller finds them at its next heartbeat (or when
    it starts)."""
    channel_ = channel(ctx, spec["host"])  # a refused channel stops us before storing
    ids = jobs.publish(ctx.layout, spec, script, count)
    if stored:
        stored(ids)
    try:
        for start in range(0, len(ids), CHUNK):
            channel_.send(messages.Submit(jobs=ids[start:start + CHUNK]))
        crashpoint.at("submit.told")
    except (GsatError, OSError) as exc:
        return ids, (f"job stored, but its controller was not told ({exc}); "
                     "it finds the job at its next heartbeat, or when it starts")
    return ids, None


def owner(ctx: Context, job_id: int) -> str:
    """The host whose controller acts on the job (NoSuchJob if there is none).
    A damaged job goes to the host its job.json names, else to ours: that
    controller removes it on gqdel and refuses anything else."""
    try:
        job = jobs.load(ctx.layout, job_id)
    except Damaged as exc:
        return (exc.spec or {}).get("host") or ctx.config.host
    return job.state.host or job.spec.get("host") or ctx.config.host


def per_job_request(ctx: Context, kind, ids: list[int], **fields) -> dict[int, tuple[int, str]]:
    """Send `kind` for `ids` to each owning controller; {id: (code, text)}."""
    results, by_host = {}, {}
    for job_id in ids:
        try:
            by_host.setdefault(owner(ctx, job_id), []).append(job_id)
        except NoSuchJob as exc:
            results[job_id] = (exc.code, str(exc))
    for host, group in by_host.items():
        for start in range(0, len(group), CHUNK):
            chunk = group[start:start + CHUNK]
            answer = request(ctx, kind(jobs=chunk, **fields), host)
            for job_id in chunk:
                code, text = answer.results.get(str(job_id), (answer.code, answer.text))
                results[job_id] = (code, text)
    return {job_id: results[job_id] for job_id in ids}
