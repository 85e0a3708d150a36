# 荣军助手 (vetbot). The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
# Rasa's telemetry would try to reach the internet.
export RASA_TELEMETRY_ENABLED := false

.PHONY: run test train chat evaluate validate unit e2e core-test clean help venv postgres redis chromium bench-db

help:
	@echo "make run       train if needed, then run the whole assistant (Ctrl-C stops)"
	@echo "make test      everything CI checks"
	@echo "make chat      chat with the running assistant in the terminal"
	@echo "make evaluate  NLU scores on the held-out split, report to docs/evaluation"

# The virtual environment: Python 3.10 (Rasa 3.6 supports 3.8-3.10 only),
# everything pinned by requirements.lock.
$(STAMP): pyproject.toml requirements.lock scripts/find-python.sh
	@PY310=$$(scripts/find-python.sh) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$PY310"; "$$PY310" -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==24.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

train: $(STAMP)
	$(VENV)/bin/vetbot train

run: train
	$(VENV)/bin/vetbot serve

chat: $(STAMP)
	$(VENV)/bin/vetbot chat

validate: $(STAMP)
	$(VENV)/bin/vetbot validate
	$(VENV)/bin/vetbot calendar-check

# The database tests run on SQLite and on a real PostgreSQL server, which the
# tests start themselves from Debian's package (installed here when missing).
postgres:
	@scripts/ensure-postgres.sh

# Likewise Redis, for the WeChat gateway's Redis backends.
redis:
	@scripts/ensure-redis.sh

# And Chromium, for the console's browser tests (end-to-end).
chromium:
	@scripts/ensure-chromium.sh

unit: $(STAMP) postgres redis
	VETBOT_REQUIRE_POSTGRES=1 VETBOT_REQUIRE_REDIS=1 $(VENV)/bin/pytest -q -m "not e2e" tests

# The same tests with the wall clock at a moment, Beijing time, by faketime (installed
# when missing): make test-clock AT="2026-12-31 23:55". Default: 2026-12-08 00:10.
.PHONY: test-clock
test-clock: $(STAMP) postgres redis
	scripts/test-clock.sh $(if $(AT),"$(AT)")

E2E = VETBOT_REQUIRE_CHROMIUM=1 $(VENV)/bin/pytest -q -m e2e tests
CORE_TEST = $(VENV)/bin/rasa test core --stories tests/stories --model models \
	  --out reports/core --fail-on-prediction-errors

e2e: train chromium
	$(E2E)

evaluate: train
	$(VENV)/bin/vetbot evaluate --out docs/evaluation

core-test: train
	$(CORE_TEST)

# Everything CI checks, cheapest first.
test: validate unit train chromium
	$(VENV)/bin/vetbot evaluate --out reports/evaluation
	$(E2E)
	$(CORE_TEST)

bench-db: $(STAMP) postgres
	$(PY) benchmarks/db_benchmark.py --backend sqlite
	$(PY) benchmarks/db_benchmark.py --backend postgresql
	$(PY) benchmarks/booking_benchmark.py --backend sqlite
	$(PY) benchmarks/booking_benchmark.py --backend postgresql
	$(PY) benchmarks/complaints_benchmark.py

clean:
	rm -rf reports models/*.tar.gz .pytest_cache
