# aetherflow — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SERVICE_PACKAGES := postgresql openssh-server openssh-client samba smbclient p7zip-full zip unzip libreoffice-calc-nogui poppler-utils mariadb-server mariadb-client libmariadb-dev pkg-config gcc

.PHONY: run test lint services bench schemas clean

$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# mysqlclient (db/mysql's fast driver) builds from source: it needs the client headers
	@# and a compiler that `make services` installs. Without them db/mysql uses PyMySQL.
	$(BIN)/python -m pip install --quiet -e '.[mysql-fast]' || echo "mysqlclient was not built (run make services first); db/mysql uses PyMySQL"
	touch $@ $(VENV)/.installed-run

## run: set up the environment and run the sample flows that need no server
run: $(VENV)/.installed-run
	$(BIN)/aetherflow run sample_flows/hello.yaml
	$(BIN)/aetherflow run sample_flows/duckdb_to_sqlite.yaml
	@echo "aetherflow is installed as $(BIN)/aetherflow; to call it as aetherflow: source $(BIN)/activate"

## test: set up the environment with test dependencies and run the whole suite
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

## lint: check the code with ruff (configured in pyproject.toml)
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

## schemas: regenerate the committed JSON Schemas of flow and profiles files (a test compares them)
schemas: $(VENV)/.installed-run
	for name in flow profiles; do env -u AETHERFLOW_PLUGIN_PATHS $(BIN)/aetherflow schema $$name --output schemas/$$name.schema.json || exit 1; done

## services: install the Debian packages of the servers the integration tests start
services:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SERVICE_PACKAGES)

## bench: measure every performance target of SPEC section 8 against its baseline
bench: $(VENV)/.installed-test
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache benchmarks/results.json
