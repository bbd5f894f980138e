"""gsat: a personal batch system for the shell.

Package map (imports point down this list only):

- vocabulary: errors, states, messages, config, layout
- adapters:   fsutil, procinfo, watch, spool, channel, fifo
- domain:     jobspec, jobs, jobtypes, environment, shepherd, scheduler
- orchestration: controller, daemon
- entry points: gsat.cli.*
"""

__version__ = "0.1.0"
