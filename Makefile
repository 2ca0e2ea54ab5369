# orderbots: `make demo` and `make test` bootstrap themselves via `make install`.
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
APT_PKGS  := chromium chromium-headless-shell dovecot-imapd
PYTHON    ?= python3

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "orderbots needs these Debian packages:$$missing"; \
	    echo "Run as root, or ask an administrator: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	  echo "Installing system packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/orderbots demo

test: install
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

bench: install
	$(PY) -m bench

clean:
	rm -rf runlog $(VENV)
