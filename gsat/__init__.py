"""gsat: a personal batch system for the shell.

Package map; imports point down this list only (tests/test_structure.py):

- vocabulary:    errors states messages config layout signames options
                 record jsontext paths lazylog
- adapters:      fsutil procinfo watch spool fifo channel channel_sysv daemon
                 heartbeat procstats summary
- domain:        jobs jobtypes environment shepherd scheduler eventlog services
                 dispatcher killing submit recovery waiting follow client mailer
- orchestration: controller (the mail gateway will sit beside it)
- entry points:  gsat.cli.* (only cli/gsatlc.py imports the controller)
"""

__version__ = "0.1.0"
