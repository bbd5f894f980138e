"""sendcmd -c COMMAND [-q HOST] [--timeout SEC]: one raw protocol message.

COMMAND is ALIVE?, PID?, HOST? or STOP, or a JSON message object as in
gsat.messages; the answer's text (or the whole answer as JSON) is printed."""

import json

from gsat import client, messages
from gsat.cli.common import parser, run, seconds
from gsat.errors import BadMessage, UsageError

PROG = "sendcmd"


def main(argv: list[str]) -> int:
    p = parser(PROG, "Send one protocol message to a controller and print its answer.")
    p.add_argument("-c", dest="command", required=True, help="ALIVE?, PID?, HOST?, STOP or a JSON message")
    p.add_argument("-q", dest="host", help="the host whose controller is asked (default: this one)")
    p.add_argument("--timeout", type=seconds(), help="seconds to wait for the answer")
    args = p.parse_args(argv)
    msg = _message(args.command)
    ctx = client.context()
    if args.timeout:
        ctx = client.with_timeout(ctx, args.timeout)
    answer = client.request(ctx, msg, args.host)
    print(answer.text if answer.text and not answer.results else json.dumps(answer.as_dict()))
    return answer.code


def _message(command: str) -> messages.Message:
    if command.lstrip().startswith("{"):
        try:
            return messages.decode(command.encode())
        except BadMessage as exc:
            raise UsageError(str(exc)) from None
    return messages.Raw(text=command)


def entry() -> None:
    run(PROG, main)


if __name__ == "__main__":
    entry()
