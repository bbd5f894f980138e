"""gsatlc start | stop [--kill-jobs] | status | run: the host's controller.

The only entry point that imports the controller."""

import logging

from gsat import client, config as configmod, daemon, messages
from gsat.cli.common import parser, run as run_main, say, seconds
from gsat.errors import UNREACHABLE, Refused
from gsat.layout import Layout

PROG = "gsatlc"


def main(argv: list[str]) -> int:
    p = parser(PROG, "Start, stop, query or run (in the foreground) this host's controller.")
    p.add_argument("action", choices=("start", "stop", "status", "run"))
    p.add_argument("--kill-jobs", action="store_true", help="stop: terminate running jobs too")
    p.add_argument("--timeout", type=seconds(), default=10.0, help="start/stop: seconds to wait")
    args = p.parse_args(argv)
    config = configmod.load()
    layout = Layout(config.home, config.host)
    layout.ensure()
    return ACTIONS[args.action](config, layout, args)


def _run(config, layout, args) -> int:
    from gsat.controller import Controller
    from gsat.logfile import handler_for
    logging.basicConfig(level=logging.INFO, handlers=[handler_for(daemon.log_path(layout))],
                        format=f"%(asctime)s {config.host} gsatlc[%(process)d] %(levelname)s %(message)s")
    controller = Controller(config)
    fd = daemon.acquire(layout)
    try:
        controller.run()
    finally:
        daemon.release(layout, fd)
    return 0


def _start(config, layout, args) -> int:
    pid = daemon.running_pid(layout)
    if pid:
        raise Refused(f"a controller for {config.host} runs already (pid {pid})")
    proc = daemon.spawn(layout)
    daemon.wait_until(lambda: daemon.running_pid(layout) or proc.poll() is not None,
                      args.timeout, "the controller did not start")
    if proc.poll() is not None:
        say(PROG, f"the controller exited with {proc.returncode}; see {daemon.log_path(layout)}")
        return proc.returncode or 1
    print(daemon.running_pid(layout))
    return 0


def _stop(config, layout, args) -> int:
    if not daemon.running_pid(layout):
        print(f"no controller runs for {config.host}")
        return 0
    ctx = client.Context(config=config, layout=layout)
    client.request(ctx, messages.Stop(kill_jobs=args.kill_jobs))
    daemon.wait_until(lambda: daemon.running_pid(layout) is None, args.timeout,
                      "the controller did not stop")
    return 0


def _status(config, layout, args) -> int:
    pid = daemon.running_pid(layout)
    if pid:
        print(f"running pid {pid} host {config.host} home {config.home}")
        return 0
    print(f"not running host {config.host} home {config.home}")
    return UNREACHABLE


ACTIONS = {"run": _run, "start": _start, "stop": _stop, "status": _status}


def entry() -> None:
    run_main(PROG, main)


if __name__ == "__main__":
    entry()
