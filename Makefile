# Thin wrapper over Meson. `make run` starts a server on 127.0.0.1:8080 with data in ./coffer-data
# (ADDR=, DATA_DIR= or COFFER_ADDR, COFFER_DATA_DIR for others);
# `make test` builds a normal and a sanitizer (ASan+UBSan) tree and runs every suite in both.
BUILD    ?= build
SANBUILD ?= build-san
FUZZBUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
MESON    ?= meson

.PHONY: all build deps run test unit integration bench fuzz stress soak format clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/build.ninja: | deps
	$(MESON) setup $(BUILD) >/dev/null

$(SANBUILD)/build.ninja: | deps
	$(MESON) setup $(SANBUILD) -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
		-Dtest_clock=true >/dev/null

build: deps $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

# make run ADDR=HOST:PORT DATA_DIR=DIR: each flag is passed only when its variable is set, so that
# otherwise COFFER_ADDR / COFFER_DATA_DIR from the environment, else the server's defaults
# (127.0.0.1:8080, ./coffer-data), apply.
run: build
	./$(BUILD)/coffer server $(if $(ADDR),--addr '$(ADDR)') $(if $(DATA_DIR),--data-dir '$(DATA_DIR)')

test: deps $(BUILD)/build.ninja $(SANBUILD)/build.ninja
	$(MESON) compile -C $(BUILD)
	$(MESON) compile -C $(SANBUILD)
	sh scripts/test.sh $(BUILD) $(SANBUILD)

bench: build
	sh bench/run.sh $(BUILD)
	python3 bench/stores.py $(BUILD)
	python3 bench/load.py shape $(BUILD)
	python3 bench/scale.py $(BUILD)
	python3 bench/summary.py

# SOAK_MINUTES (3) of mixed load: no failed request, RSS and open descriptors flat (bench/README.md)
soak: build
	python3 bench/load.py soak $(BUILD)

$(FUZZBUILD)/build.ninja: | deps
	CC=clang $(MESON) setup $(FUZZBUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		>/dev/null

# every libFuzzer target for FUZZ_SECONDS (default 60) each; fuzz/README.md
fuzz: deps $(FUZZBUILD)/build.ninja
	$(MESON) compile -C $(FUZZBUILD)
	sh scripts/fuzz.sh $(FUZZBUILD) $(FUZZ_SECONDS)

# crash durability at length : 200 kill -9 of a server under writes, 50 of a root-key rotation
stress: build
	ITEST_KILL_ROUNDS=200 ITEST_ROTATION_KILLS=50 COFFER_BIN=$(BUILD)/coffer python3 tests/integration/run.py \
		-v test_durability

format:
	clang-format -i src/*.c src/*/*.[ch] tests/unit/*.c bench/*.c

clean:
	rm -rf $(BUILD) $(SANBUILD) $(FUZZBUILD)
