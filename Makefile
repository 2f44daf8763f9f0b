# The two commands a user needs: `make demo` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
# The sanitizer tree: clang, ASan + UBSan, and the libFuzzer targets (scripts/test-asan).
ASAN_DIR ?= build-asan
FUZZ_SECONDS ?= 300

.PHONY: all deps build build-asan test test-asan test-long fuzz demo deb package clean format

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/build.ninja:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	@cmake --build $(BUILD_DIR) -j $(JOBS)

$(ASAN_DIR)/build.ninja:
	@cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -gline-tables-only" -DTB_SANITIZE=ON -DTB_FUZZ=ON

build-asan: deps $(ASAN_DIR)/build.ninja
	@cmake --build $(ASAN_DIR) -j $(JOBS)

# Everything CI runs. The sanitizer half (test-asan) is not in it yet: its cold build alone is
# 17-20 min on 2 cores, which would take CI past its 30-minute budget.
test: build
	@cd $(BUILD_DIR) && ctest -j $(JOBS) --output-on-failure --timeout 600

# The suite under ASan + UBSan (clang-14), then each fuzz target for 30 s.
test-asan: build-asan
	@JOBS=$(JOBS) scripts/test-asan $(ASAN_DIR)

# The crash test with 200 kills instead of 30 (several minutes).
test-long: build
	@CRASH_KILLS=200 $(BUILD_DIR)/bin/integration_crash

# Each fuzz target for FUZZ_SECONDS (300) on a copy of its corpus; reproducers land in
# $(ASAN_DIR)/fuzz-artifacts/<target>/.
fuzz: build-asan
	@cd $(ASAN_DIR) && FUZZ_SECONDS=$(FUZZ_SECONDS) ctest -j $(JOBS) -L fuzz --output-on-failure

demo: build
	@scripts/demo $(BUILD_DIR)

# The Debian package (CPack): $(BUILD_DIR)/tokenbroker_VERSION_ARCH.deb.
deb package: build
	@cd $(BUILD_DIR) && cpack -G DEB

format:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	@rm -rf $(BUILD_DIR) $(ASAN_DIR)
