# Herald's entry points. Every target installs missing Debian packages first (scripts/deps.sh).
#   make build   release binary at build/release/herald
#   make run     build, then serve on 127.0.0.1:8080 with data in ./var (demo tenant created once)
#   make test    lint, then release + sanitize (ASan+UBSan) builds, every test, short fuzz runs
#   make lint    clang-format check + clang-tidy (scripts/lint.sh; LINT_ARGS=--all adds Beast TUs, tests)
#   make format  rewrites every tracked C++ file that clang-format would change
#   make fuzz    libFuzzer targets for longer (FUZZ_SECONDS, default 300)
#   make soak    the long chaos run (bench/soak.sh)
#   make package the .deb at build/release/herald_<version>_<arch>.deb (CPack; docs/production.md)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8080
DATA ?= ./var
FUZZ_SECONDS ?= 300

.PHONY: deps build debug sanitize fuzz-build run test test-release test-sanitize test-fuzz fuzz soak clean \
	lint format package

deps:
	@bash scripts/deps.sh

build/%/build.ninja: | deps
	cmake -S . -B build/$* -G Ninja -DHERALD_MODE=$* $(if $(filter fuzz,$*),-DCMAKE_CXX_COMPILER=clang++,)

build: deps build/release/build.ninja
	ninja -C build/release -j $(JOBS)

sanitize: deps build/sanitize/build.ninja
	ninja -C build/sanitize -j $(JOBS)

debug: deps build/debug/build.ninja
	ninja -C build/debug -j $(JOBS)

fuzz-build: deps build/fuzz/build.ninja
	ninja -C build/fuzz -j $(JOBS)

run: build
	./build/release/herald serve --listen $(LISTEN) --data $(DATA) --demo

package: build
	cd build/release && cpack -G DEB

test: deps
	bash scripts/test.sh

test-release: build
	bash scripts/test.sh release

lint: deps
	bash scripts/lint.sh $(LINT_ARGS)

format: deps
	bash scripts/lint.sh --fix --format-only

fuzz: fuzz-build
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

soak: build
	bash bench/soak.sh

clean:
	rm -rf build

# Herald vs nats-server on the same shapes (bench/run.sh; BENCH_ARGS=--quick for a short run).
.PHONY: bench
bench:
	bash bench/run.sh $(BENCH_ARGS)
	HERALD_BIN=$${HERALD_BIN:-build/release/herald} bash tests/compat/tracker/run.sh fleet 60
