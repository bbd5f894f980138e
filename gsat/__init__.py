"""gsat: a personal batch system for the shell.

Package map; imports point down this list only (tests/test_structure.py):

- vocabulary:    errors states messages config layout signames options
                 record jsontext paths lazylog sigstatus timefmt
- adapters:      fsutil procinfo watch spool fifo channel channel_sysv daemon
                 heartbeat procstats summary mailparse openpgp mailstate
                 mailsources
- domain:        jobs jobtypes environment shepherd spare scheduler eventlog services
                 dispatcher killing submit recovery waiting follow client mailer
                 mailactions mailreply
- orchestration: controller (with runs, a part of its class), mailgate
                 (never import each other)
- entry points:  gsat.cli.* (only cli/gsatlc.py imports the controller, only
                 cli/mailgate.py the mail gateway)
"""

__version__ = "0.1.0"
