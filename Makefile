# The two commands a user needs: `make demo` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# The sanitizer tree: clang, ASan + UBSan, and the libFuzzer targets (scripts/test-asan).
ASAN_DIR ?= build-asan
FUZZ_SECONDS ?= 300
# The benchmark's Release tree (bench/README.md).
BENCH_DIR ?= build-release

.PHONY: all deps build build-asan test test-asan test-long fuzz bench demo deb package clean format

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The sanitizer tree builds at -O0: its heaviest files take a third of the CPU time of -O1, and
# the checks are the same.
# ASAN_HARNESS: the bin/ of a tree whose privicore-sim and integration test drivers to use instead
# of building them (TB_HARNESS_BIN_DIR); configured on every run, so it follows the caller.
ASAN_HARNESS ?=
build-asan: deps
	@cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" -DTB_SANITIZE=ON -DTB_FUZZ=ON \
	  -DTB_HARNESS_BIN_DIR=$(ASAN_HARNESS) >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS)

# Everything CI runs (.ci/run): the suite in the gcc tree, then the sanitizer half (test-asan)
# on that tree's test harness: only the product and the tests that run it in-process are compiled
# twice. Estimated from CPU times at 27-30 min cold on 2 idle cores (CI's budget: 30).
test: build
	@cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure --timeout 600
	@$(MAKE) --no-print-directory test-asan ASAN_HARNESS=$(abspath $(BUILD_DIR))/bin

# The suite under ASan + UBSan (clang-14), then each fuzz target for 30 s, two at a time.
test-asan: build-asan
	@JOBS=$(JOBS) scripts/test-asan $(ASAN_DIR)

# The crash test with 200 kills instead of 30 (several minutes).
test-long: build
	@CRASH_KILLS=200 $(BUILD_DIR)/bin/integration_crash

# Each fuzz target for FUZZ_SECONDS (300) on a copy of its corpus; reproducers land in
# $(ASAN_DIR)/fuzz-artifacts/<target>/.
fuzz: build-asan
	@cd $(ASAN_DIR) && FUZZ_SECONDS=$(FUZZ_SECONDS) ctest -j $(JOBS) -L fuzz --output-on-failure

$(BENCH_DIR)/build.ninja:
	@cmake -S . -B $(BENCH_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

# tokenbrokerd against nginx on this machine (Release build); writes bench/results/<date>.md.
# BENCH_QUICK=1: short runs, smaller counts, no 10-minute soak. BENCH_ONLY=token,proxy,...
bench: $(BENCH_DIR)/build.ninja
	@scripts/install-deps --bench
	@cmake --build $(BENCH_DIR) -j $(JOBS) --target tokenbrokerd privicore-sim loadgen
	@BENCH_BUILD_DIR=$(BENCH_DIR) bench/bench.py

demo: build
	@scripts/demo $(BUILD_DIR)

# The Debian package (CPack): $(BUILD_DIR)/tokenbroker_VERSION_ARCH.deb.
deb package: build
	@cd $(BUILD_DIR) && cpack -G DEB

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) $(ASAN_DIR)
