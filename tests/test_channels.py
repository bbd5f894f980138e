"""The channel contract, run against both channels (file spool and SysV
queue), and what only the SysV channel has to survive."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest
import sysv_ipc

from gsat import config, messages
from gsat.channel import FileChannel
from gsat.channel_sysv import SysvChannel, msgmax, queue_key
from gsat.errors import BadMessage, GsatError, UsageError
from gsat.layout import Layout
from helpers import BIN, remove_queue, wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["file", "sysv"])
def pair(request, home_env):
    """(a client channel, a fresh-controller channel factory, kind) over one GSAT_HOME."""
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    make = (lambda: FileChannel(layout, cfg.host)) if request.param == "file" else \
        (lambda: SysvChannel(cfg, layout, cfg.host))
    yield make(), make, request.param
    remove_queue(queue_key(cfg.home, os.geteuid(), cfg.host))


def test_messages_arrive_whole_and_in_order(pair):
    client, make, _ = pair
    sent = [messages.Hold(jobs=[1]), messages.Release(jobs=[2, 3]), messages.Signal(jobs=[4], signal=10)]
    for msg in sent:
        client.send(msg)
    assert make().receive() == sent
    assert make().receive() == []


def test_messages_sent_before_the_controller_exists_wait_for_it(pair):
    client, make, _ = pair
    client.send(messages.Submit(jobs=[7]))
    assert make().receive() == [messages.Submit(jobs=[7])]  # a controller that starts later


def test_request_gets_its_answer(pair):
    client, make, _ = pair
    server = make()

    def serve():
        got = wait_for(server.receive, 10, "the request")
        server.answer(got[0], messages.Answer(code=3, text="no such job 9"))
    thread = threading.Thread(target=serve)
    thread.start()
    answer = client.request(messages.Delete(jobs=[9]), timeout=10)
    thread.join()
    assert (answer.code, answer.text) == (3, "no such job 9")


def test_no_answer_is_unreachable_in_time(pair):
    client, _, _ = pair
    start = time.monotonic()
    with pytest.raises(GsatError) as err:
        client.request(messages.Raw(text="ALIVE?"), timeout=0.3)
    assert err.value.code == 5 and time.monotonic() - start < 5


def test_an_answer_nobody_waits_for_is_dropped(pair):
    client, make, kind = pair
    server = make()
    with pytest.raises(GsatError):
        client.request(messages.Raw(text="PID?"), timeout=0.2)  # the client gives up
    (late,) = server.receive()
    server.answer(late, messages.Answer(text="stale"))          # nobody reads this one

    def serve():
        got = wait_for(server.receive, 10, "the second request")
        server.answer(got[0], messages.Answer(text="fresh"))
    thread = threading.Thread(target=serve)
    thread.start()
    assert client.request(messages.Raw(text="PID?"), timeout=10).text == "fresh"
    thread.join()


def test_oversized_messages_are_refused_before_sending(pair):
    client, make, kind = pair
    limit = messages.MAX_SIZE if kind == "file" else msgmax()
    with pytest.raises((BadMessage, UsageError)):
        client.send(messages.Raw(text="x" * (limit + 10)))
    client.send(messages.Raw(text="ALIVE?"))  # the channel is not wedged
    assert make().receive() == [messages.Raw(text="ALIVE?")]


def test_garbage_is_set_aside_and_the_next_message_still_arrives(pair, home_env):
    client, make, kind = pair
    server = make()
    garbage = b'{"kind": "launch-missiles"}'
    if kind == "file":
        path = server.dir / "tmp" / "junk"
        path.write_bytes(garbage)
        os.rename(path, server.dir / "new" / "0.0.junk")
    else:
        server.queue.send(garbage, type=1)
    client.send(messages.Hold(jobs=[5]))
    assert server.receive() == [messages.Hold(jobs=[5])]
    bad = home_env / "spool" / "testhost" / "bad"
    reasons = [p.read_text() for p in bad.glob("*.reason")]
    assert any("unknown command" in r for r in reasons)


# bodies that are JSON objects but confuse the types: decode() must refuse
# each with BadMessage, not with the TypeError or RecursionError of a bug
TYPE_CONFUSED = [b'{"v":1,"kind":[]}', b'{"v":1,"kind":{"a":1}}', b'{"v":1,"kind":null}',
                 b'{"v":1,"kind":"hold","jobs":[[1]]}', b'[' * 4000,
                 b'{"v":1,"kind":"trigger","job":1,"event":"e","args":["\\udce9"]}']


def put_raw(server, kind: str, data: bytes) -> None:
    """Put bytes on the channel as a hostile writer would, after what is there already."""
    if kind == "file":
        path = server.dir / "tmp" / "raw"
        path.write_bytes(data)
        os.rename(path, server.dir / "new" / f"{time.time_ns()}.0.raw")
    else:
        server.queue.send(data, type=1)


@pytest.mark.parametrize("garbage", TYPE_CONFUSED, ids=range(len(TYPE_CONFUSED)))
def test_a_type_confused_message_is_set_aside_and_costs_no_other(pair, home_env, garbage):
    client, make, kind = pair
    server = make()
    client.send(messages.Hold(jobs=[4]))
    put_raw(server, kind, garbage)
    client.send(messages.Hold(jobs=[5]))
    assert server.receive() == [messages.Hold(jobs=[4]), messages.Hold(jobs=[5])]
    (reason,) = [p.read_text() for p in (home_env / "spool" / "testhost" / "bad").glob("*.reason")]
    assert not reason.startswith("unreadable"), reason  # refused by the decoder, not by its crash


# ---- SysV only -----------------------------------------------------------

def sysv_env(gsat):
    gsat.env["GSAT_CHANNEL"] = "sysv"
    return gsat


def test_sysv_refuses_a_queue_of_another_mode(gsat):
    g = sysv_env(gsat)
    queue = sysv_ipc.MessageQueue(g.queue_key(), sysv_ipc.IPC_CREX, mode=0o666)
    try:
        proc = g.run("gsatlc", "run", timeout=20)
        assert proc.returncode == 4 and "0666" in proc.stderr
        proc = g.run("gqsub", input="#!/bin/sh\ntrue\n")
        assert proc.returncode == 4 and proc.stdout == ""
        assert json.loads(g.run("gqstat", "--json").stdout) == []  # nothing was stored
    finally:
        queue.remove()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a queue's owner needs root")
def test_sysv_refuses_a_queue_of_another_owner(gsat):
    g = sysv_env(gsat)
    queue = sysv_ipc.MessageQueue(g.queue_key(), sysv_ipc.IPC_CREX, mode=0o600)
    queue.uid = 65534
    try:
        proc = g.run("gsatlc", "run", timeout=20)
        assert proc.returncode == 4 and "owner 65534" in proc.stderr
    finally:
        queue.remove()


def test_sysv_survives_ipcrm_under_a_running_controller(gsat):
    g = sysv_env(gsat)
    g.start()
    first = g.submit("#!/bin/sh\ntrue\n")
    assert g.run("gqwait", first, timeout=20).returncode == 0
    sysv_ipc.MessageQueue(g.queue_key()).remove()
    job = g.submit("#!/bin/sh\nexit 6\n")       # the client makes a new queue and rings
    assert g.run("gqwait", job, timeout=20).returncode == 6
    assert g.run("sendcmd", "-c", "ALIVE?").stdout == "ALIVE\n"
    queue = sysv_ipc.MessageQueue(g.queue_key())
    assert queue.mode & 0o777 == 0o600


def test_sysv_oversized_command_gets_a_clear_error_and_the_queue_goes_on(gsat):
    g = sysv_env(gsat)
    g.start()
    job = g.submit("#!/bin/sh\ntrue\n")
    assert g.run("gqwait", job, timeout=20).returncode == 0
    proc = g.run("trigger", "--job", job, "big", "x" * (msgmax() + 100))
    assert proc.returncode == 2 and "larger than the queue allows" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert g.run("trigger", "--job", job, "small", "y").returncode == 0
    assert "small" in g.events(job) and "big" not in g.events(job)


def test_sysv_with_several_hosts_is_refused(gsat):
    g = sysv_env(gsat)
    other = g.home / "hosts" / "otherhost"
    other.mkdir(parents=True, mode=0o700)
    (other / "heartbeat.json").write_text(json.dumps(
        {"host": "otherhost", "up": True, "time": time.time(), "interval": 60}))
    proc = g.run("gsatlc", "run", timeout=20)
    assert proc.returncode == 2 and "one host only" in proc.stderr
    proc = g.run("gqsub", "-q", "otherhost", input="#!/bin/sh\ntrue\n")
    assert proc.returncode == 2 and "only this host" in proc.stderr


def test_sysv_answers_nobody_reads_are_drained(home_env):
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    server = SysvChannel(cfg, layout, cfg.host)
    client = subprocess.Popen(["sleep", "60"])  # a client that will give up without reading
    try:
        server.answer(messages.Raw(text="PID?", reply=str(client.pid)), messages.Answer(text="late"))
        assert server.queue.current_messages == 1
        server.housekeeping(time.time())
        assert server.queue.current_messages == 1  # it may still read it
        client.kill()
        client.wait()
        server.housekeeping(time.time())
        assert server.queue.current_messages == 0 and not server.answered
        server.answer(messages.Raw(text="PID?", reply=str(client.pid)), messages.Answer(text="x"))
        assert server.queue.current_messages == 0  # to a client that is gone: not sent at all
    finally:
        client.kill()
        remove_queue(queue_key(cfg.home, os.geteuid(), cfg.host))


def test_sysv_a_bad_message_behind_a_good_one_loses_neither(gsat):
    """The colleague's reproduction: a gqrls waiting in the queue of a stopped
    controller, then a message whose kind is a list.  Once the controller
    goes on, the bad one is set aside and the release is done and answered."""
    g = sysv_env(gsat)
    controller = g.start()
    job = g.submit("#!/bin/sh\ntrue\n", "-H")
    queue = sysv_ipc.MessageQueue(g.queue_key())
    wait_for(lambda: queue.current_messages == 0, what="the controller to take the submission")
    os.kill(controller.pid, signal.SIGSTOP)
    try:
        release = subprocess.Popen([str(BIN / "gqrls"), str(job)], env=g.env, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: queue.current_messages == 1, what="gqrls's request on the queue")
        queue.send(b'{"v":1,"kind":[]}', type=1)
    finally:
        os.kill(controller.pid, signal.SIGCONT)
    assert release.wait(timeout=20) == 0, release.stderr.read()
    assert g.run("gqwait", job, timeout=20).returncode == 0
    reasons = [p.read_text() for p in (g.home / "spool" / g.host / "bad").glob("*.reason")]
    assert reasons == ["unknown command []\n"]
    assert "Traceback" not in g.log()


def test_sysv_bad_messages_are_kept_bounded_like_the_spools(home_env):
    """A flood of bad messages on the queue keeps the newest KEEP_BAD in bad/."""
    from gsat import spool
    cfg = config.load()
    layout = Layout(cfg.home, cfg.host)
    layout.ensure()
    channel = SysvChannel(cfg, layout, cfg.host)
    for _ in range(spool.KEEP_BAD + 20):
        channel.queue.send(b'{"kind": []}', type=1)
    assert channel.receive() == []
    bad = os.listdir(layout.spool() / "bad")
    assert len([n for n in bad if not n.endswith(".reason")]) == spool.KEEP_BAD
    assert len([n for n in bad if n.endswith(".reason")]) == spool.KEEP_BAD
