# Thin wrapper over Meson. `make run` starts a server on 127.0.0.1:8080 with data in ./coffer-data
# (ADDR=, DATA_DIR= or COFFER_ADDR, COFFER_DATA_DIR for others);
# `make test` runs `make check`, then builds a normal and a sanitizer (ASan+UBSan) tree and runs every
# suite in both.
# `make check` runs the tool-enforced style: the clang-format check, the layering check and a
# ThreadSanitizer build running the unit tests and the threaded integration suites.
# Warnings are errors in `make test` and `make check` (-Dwerror=true on their trees), not in `make build`.
BUILD    ?= build
SANBUILD ?= build-san
TSANBUILD ?= build-tsan
FUZZBUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
MESON    ?= meson
# `make install`: the binary, its man pages and bash/zsh completions under $(DESTDIR)$(PREFIX)
PREFIX   ?= /usr/local
DESTDIR  ?=

.PHONY: all build deps run test check check-format check-layers tsan unit integration bench fuzz stress soak \
	format clean generated install uninstall

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

# man pages and completion scripts, made by the built binary from its own command table
generated: build
	rm -rf $(BUILD)/generated
	mkdir -p $(BUILD)/generated
	$(BUILD)/coffer man --out $(BUILD)/generated/man1
	$(BUILD)/coffer completion bash > $(BUILD)/generated/coffer.bash
	$(BUILD)/coffer completion zsh > $(BUILD)/generated/_coffer

install: generated
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/libexec/coffer" "$(DESTDIR)$(PREFIX)/share/man/man1" \
		"$(DESTDIR)$(PREFIX)/share/bash-completion/completions" "$(DESTDIR)$(PREFIX)/share/zsh/site-functions"
	install -m 755 $(BUILD)/coffer "$(DESTDIR)$(PREFIX)/bin/coffer"
	install -m 755 $(BUILD)/coffer-scan "$(DESTDIR)$(PREFIX)/libexec/coffer/coffer-scan"
	install -m 644 $(BUILD)/generated/man1/*.1 "$(DESTDIR)$(PREFIX)/share/man/man1/"
	install -m 644 $(BUILD)/generated/coffer.bash "$(DESTDIR)$(PREFIX)/share/bash-completion/completions/coffer"
	install -m 644 $(BUILD)/generated/_coffer "$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_coffer"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/coffer" "$(DESTDIR)$(PREFIX)/libexec/coffer/coffer-scan" \
		"$(DESTDIR)$(PREFIX)/share/man/man1/coffer.1" \
		"$(DESTDIR)$(PREFIX)/share/man/man1/"coffer-*.1 \
		"$(DESTDIR)$(PREFIX)/share/bash-completion/completions/coffer" \
		"$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_coffer"

# make run ADDR=HOST:PORT DATA_DIR=DIR: each flag is passed only when its variable is set, so that
# otherwise COFFER_ADDR / COFFER_DATA_DIR from the environment, else the server's defaults
# (127.0.0.1:8080, ./coffer-data), apply.
run: build
	./$(BUILD)/coffer server $(if $(ADDR),--addr '$(ADDR)') $(if $(DATA_DIR),--data-dir '$(DATA_DIR)')

$(TSANBUILD)/build.ninja: | deps
	$(MESON) setup $(TSANBUILD) -Db_sanitize=thread -Dbuildtype=debug -Dtest_clock=true -Dwerror=true \
		>/dev/null

# The test trees treat warnings as errors; `meson configure` keeps that setting in $(BUILD) afterwards
# (`meson configure $(BUILD) -Dwerror=false` undoes it).
# make check first: a tree that fails the style, layering or ThreadSanitizer run is not tested further.
test: deps $(BUILD)/build.ninja $(SANBUILD)/build.ninja
	$(MAKE) check
	$(MESON) configure $(BUILD) -Dwerror=true
	$(MESON) configure $(SANBUILD) -Dwerror=true
	$(MESON) compile -C $(BUILD)
	$(MESON) compile -C $(SANBUILD)
	sh scripts/test.sh $(BUILD) $(SANBUILD)

bench: build
	sh bench/run.sh $(BUILD)
	python3 bench/stores.py $(BUILD)
	python3 bench/load.py shape $(BUILD)
	python3 bench/scale.py $(BUILD)
	python3 bench/bigfolder.py $(BUILD) $(BENCH_OLD)
	python3 bench/agentpoll.py $(BUILD)
	BENCH_STORAGE_RETENTION=$${BENCH_STORAGE_RETENTION-2s} python3 bench/storage.py $(BUILD)
	python3 bench/durable.py $(BENCH_OLD) $(BUILD)
	python3 bench/backup.py $(BUILD)
	python3 bench/scan.py $(BUILD)
	python3 bench/unseal.py $(BUILD)
	python3 bench/summary.py

# SOAK_MINUTES (3) of mixed load: no failed request, RSS and open descriptors flat; then as long of reads
# under --audit-retention SOAK_RETENTION (30s): the store's size flat (bench/README.md)
soak: build
	python3 bench/load.py soak $(BUILD)
	python3 bench/load.py store $(BUILD)

$(FUZZBUILD)/build.ninja: | deps
	CC=clang CXX=clang++ $(MESON) setup $(FUZZBUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
		>/dev/null

# every libFuzzer target for FUZZ_SECONDS (default 60) each; fuzz/README.md
fuzz: deps $(FUZZBUILD)/build.ninja
	$(MESON) compile -C $(FUZZBUILD)
	sh scripts/fuzz.sh $(FUZZBUILD) $(FUZZ_SECONDS)

# crash durability at length : 200 kill -9 of a server under writes, 50 of a root-key rotation
stress: build
	ITEST_KILL_ROUNDS=200 ITEST_ROTATION_KILLS=50 COFFER_BIN=$(BUILD)/coffer python3 tests/integration/run.py \
		-v test_durability

check: check-format check-layers tsan

# clang-format --dry-run -Werror over the tracked C files of src/, tests/unit/, bench/ and fuzz/
check-format:
	sh scripts/check-format.sh

# which folder of src/ may include which (scripts/check-layers.py --graph prints the graph)
check-layers:
	python3 scripts/check-layers.py

# ThreadSanitizer: the unit tests and the threaded integration suites (scripts/tsan.sh)
tsan: deps $(TSANBUILD)/build.ninja
	$(MESON) compile -C $(TSANBUILD)
	sh scripts/tsan.sh $(TSANBUILD)

format:
	clang-format -i $$(git ls-files 'src/*.[ch]' 'src/*.cc' 'tests/unit/*.[ch]' 'bench/*.c' 'fuzz/*.c')

clean:
	rm -rf $(BUILD) $(SANBUILD) $(TSANBUILD) $(FUZZBUILD)
