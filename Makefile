# gsat: `make demo` runs example jobs on the checkout's spool/; `make test`
# installs what the tests need and runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_HOME := $(CURDIR)/spool
# Debian packages the tests use (installed when run as root)
DEBS   := gnupg procps task-spooler nq dovecot-imapd openssl

.PHONY: demo test soak bench debs clean demo-stop

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
	$(PY) -m compileall -q gsat
	touch $@

debs:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi

# The whole suite once (file channel, inotify), then the end-to-end tests again
# over the SysV channel and over the polling watcher.
E2E := tests/test_smoke.py tests/test_commands.py tests/test_lifecycle.py tests/test_crash.py \
       tests/test_services.py tests/test_watching.py tests/test_hardening.py \
       tests/test_mailgate.py tests/test_damaged.py tests/test_mailgate_addressing.py \
       tests/test_mailgate_replay.py tests/test_arrays.py tests/test_flood.py
test: $(STAMP) debs
	$(PY) -m pytest -q -p no:cacheprovider
	GSAT_CHANNEL=sysv $(PY) -m pytest -q -p no:cacheprovider $(E2E)
	GSAT_WATCH=poll GSAT_POLL_INTERVAL=0.05 $(PY) -m pytest -q -p no:cacheprovider $(E2E)

# The slow full-scale tests, the model on 40 random examples, then SOAK_MINUTES
# (default 30) of jobs under random faults; the last line counts jobs run,
# faults, jobs lost and jobs run twice.
SOAK_MINUTES ?= 30
soak: $(STAMP) debs
	$(PY) -m pytest -q -p no:cacheprovider -m slow
	GSAT_MODEL_EXAMPLES=40 $(PY) -m pytest -q -p no:cacheprovider tests/test_model.py
	SOAK_MINUTES=$(SOAK_MINUTES) $(PY) tests/soak.py

demo: $(STAMP)
	@chmod 700 $(DEMO_HOME)
	@GSAT_HOME=$(DEMO_HOME) PATH=$(CURDIR)/$(BIN):$$PATH sh examples/demo.sh

demo-stop:
	@GSAT_HOME=$(DEMO_HOME) $(BIN)/gsatlc stop

bench: $(STAMP) debs
	$(PY) bench/run.py

clean:
	-GSAT_HOME=$(DEMO_HOME) $(BIN)/gsatlc stop 2>/dev/null
	rm -rf $(VENV) build *.egg-info
	find $(DEMO_HOME) -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
