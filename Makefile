# Thin wrapper over Meson. `make run` starts a server on 127.0.0.1:8080 with data in ./coffer-data;
# `make test` builds a normal and a sanitizer (ASan+UBSan) tree and runs every suite in both.
BUILD    ?= build
SANBUILD ?= build-san
MESON    ?= meson

.PHONY: all build deps run test unit integration bench fuzz format clean

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

run: build
	./$(BUILD)/coffer server --addr 127.0.0.1:8080 --data-dir ./coffer-data

test: deps $(BUILD)/build.ninja $(SANBUILD)/build.ninja
	$(MESON) compile -C $(BUILD)
	$(MESON) compile -C $(SANBUILD)
	sh scripts/test.sh $(BUILD) $(SANBUILD)

bench: build
	sh bench/run.sh $(BUILD)
	python3 bench/stores.py $(BUILD)

fuzz:
	@echo "make fuzz: not implemented yet: the fuzz targets arrive with issue 8" >&2; exit 2

format:
	clang-format -i src/*.c src/*/*.[ch] tests/unit/*.c bench/*.c

clean:
	rm -rf $(BUILD) $(SANBUILD)
