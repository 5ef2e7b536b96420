# CareCircle — two commands: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PG_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test

.PHONY: run sandbox test test-fast bench lint migrate messages clean postgres browser fonts

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

messages: $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -d content/locales -D messages 2>&1 | grep -v "^$$" || true

migrate: $(STAMP) messages
	$(VENV)/bin/carecircle migrate

## make run: with TELEGRAM_BOT_TOKEN unset starts the sandbox (fake Telegram + web chat on :8080)
run: migrate fonts
	$(VENV)/bin/carecircle run

sandbox: $(STAMP) messages
	$(VENV)/bin/carecircle sandbox

# PostgreSQL is required by the tests; start the local cluster when it is down (CI and dev machines).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -h 127.0.0.1 -p 5432

# Headless Chromium for the browser tests (Debian's package).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# A font that draws Chinese, for the plan card and charts (Debian's small WenQuanYi Micro Hei).
# Without one they fall back to English labels. matplotlib caches its font list: drop the cache.
fonts:
	@fc-list :lang=zh 2>/dev/null | grep -q . || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing a Chinese font"; \
	    apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 || \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; }; \
	    rm -rf $${HOME}/.cache/matplotlib; \
	  else echo "no Chinese font: install fonts-wqy-microhei (or any CJK font) for Chinese plan cards"; fi; }

test: $(STAMP) messages postgres browser fonts
	$(VENV)/bin/ruff check .
	CARECIRCLE_TEST_PG=$(PG_URL) $(VENV)/bin/pytest -q -p no:cacheprovider -n 4

test-fast: $(STAMP) messages
	$(VENV)/bin/pytest -q -x -m "not browser"

bench: $(STAMP) messages postgres
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) data/*.sqlite3* build *.egg-info
