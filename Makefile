# zerowire build. `make` builds bin/zerowire-{webhook,proxy,certs};
# `make check` runs everything CI runs. Sources are discovered by directory:
#   lib/*.c                 -> libzw.a (shared by every program)
#   <comp>/*.c              -> lib<comp>.a, plus <comp>/main.c -> bin/zerowire-<comp>
#   <comp>/*.proto          -> protobuf-c sources generated at build time
#   <comp>/tests/test_*.c   -> one cmocka binary per file, linked with lib<comp>.a and libzw.a
#   <comp>/fuzz/fuzz_*.c    -> libFuzzer targets (make fuzz)
# SAN=1 builds into build/san with AddressSanitizer and UBSan.

VERSION    := 0.1.0
COMMIT     := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
SAN        ?= 0
CC         ?= cc
PKGS       := libmicrohttpd gnutls jansson libcurl libuv libnghttp2 libprotobuf-c yaml-0.1
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
COMPONENTS := webhook proxy certs

ifeq ($(SAN),fuzz)
CC         := clang
BUILD      ?= build/fuzz
BINDIR     ?= $(BUILD)/bin
OPT        := -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
else ifeq ($(SAN),1)
BUILD      ?= build/san
BINDIR     ?= $(BUILD)/bin
OPT        := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD      ?= build/rel
BINDIR     ?= bin
OPT        := -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS   := -D_GNU_SOURCE -DZW_VERSION=\"$(VERSION)\" -DZW_COMMIT=\"$(COMMIT)\" -Ilib -I$(BUILD)/gen -I$(LLHTTP_INC) $(PKG_CFLAGS)
CFLAGS     := -std=c11 -g $(OPT) -Wall -Wextra -Werror -MMD -MP
LDFLAGS    := $(filter -fsanitize%,$(OPT)) -Wl,--as-needed
LDLIBS     := $(PKG_LIBS) -lpthread -lm

LIB_SRC    := $(wildcard lib/*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
LLHTTP_OBJ := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
PROTO_SRC  := $(wildcard $(COMPONENTS:%=%/*.proto))
PROTO_C    := $(patsubst %.proto,$(BUILD)/gen/%.pb-c.c,$(PROTO_SRC))
PROTO_OBJ  := $(PROTO_C:.c=.o)

.SECONDARY:
.PHONY: all check unit integration e2e format format-check style fuzz bench demo setup \
	cluster-up cluster-down clean help
all: $(COMPONENTS:%=$(BINDIR)/zerowire-%)

help:
	@echo "make | make check | make unit | make e2e | make bench | make demo | make fuzz | make format"

setup:
	./scripts/setup.sh

$(BUILD)/lib/%.o: lib/%.c | $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 -std=c11 -g $(OPT) -w -c -o $@ $<

$(BUILD)/gen/%.pb-c.c: %.proto
	@mkdir -p $(dir $@)
	protoc-c --proto_path=$(dir $<) --c_out=$(dir $@) $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	$(CC) $(CPPFLAGS) -std=c11 -g $(OPT) -w -c -o $@ $<

$(BUILD)/libzw.a: $(LIB_OBJ) $(LLHTTP_OBJ) $(PROTO_OBJ)
	@rm -f $@
	ar rcs $@ $(filter %.o,$^)

# Per-component rules: objects, component archive (all but main.o), binary, tests.
define COMPONENT_RULES
$(1)_SRC  := $$(filter-out $(1)/main.c,$$(wildcard $(1)/*.c))
$(1)_OBJ  := $$($(1)_SRC:%.c=$(BUILD)/%.o)
$(1)_TEST := $$(patsubst $(1)/tests/%.c,$(BUILD)/test/$(1)_%,$$(wildcard $(1)/tests/test_*.c))
$(BUILD)/$(1)/%.o: $(1)/%.c | $$(PROTO_C)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -I$(1) $$(CFLAGS) -c -o $$@ $$<
$(BUILD)/lib$(1).a: $$($(1)_OBJ)
	@rm -f $$@
	ar rcs $$@ $$(filter %.o,$$^)
$(BINDIR)/zerowire-$(1): $(BUILD)/$(1)/main.o $(BUILD)/lib$(1).a $(BUILD)/libzw.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o %.a,$$^) $$(LDLIBS)
$(BUILD)/test/$(1)_%: $(1)/tests/%.c $(BUILD)/lib$(1).a $(BUILD)/libzw.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -I$(1) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$(filter %.c %.o %.a,$$^) -lcmocka $$(LDLIBS)
TESTS += $$($(1)_TEST)
$(1)_TOOL := $$(patsubst $(1)/tests/%.c,$(BUILD)/test/$(1)_%,$$(wildcard $(1)/tests/tool_*.c))
TOOLS += $$($(1)_TOOL)
endef
$(foreach c,$(COMPONENTS),$(eval $(call COMPONENT_RULES,$(c))))

LIB_TEST := $(patsubst lib/tests/%.c,$(BUILD)/test/lib_%,$(wildcard lib/tests/test_*.c))
$(BUILD)/test/lib_%: lib/tests/%.c $(BUILD)/libzw.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) -lcmocka $(LDLIBS)
TESTS += $(LIB_TEST)
TOOLS += $(patsubst lib/tests/%.c,$(BUILD)/test/lib_%,$(wildcard lib/tests/tool_*.c))

# Test tools (<dir>/tests/tool_*.c): programs the pytest suites drive; built, not run.
tools: all $(TOOLS)

# Unit tests: always built and run under ASan/UBSan, one process per file.
unit:
	@$(MAKE) --no-print-directory SAN=1 run-unit

.PHONY: run-unit tools
run-unit: $(TESTS) all
	@failed=""; for t in $(TESTS); do \
		echo "== $$t"; \
		ZW_SHARED=$(CURDIR)/../shared timeout 300 $$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "unit tests FAILED:$$failed"; exit 1; fi; \
	echo "unit tests: all passed"

# Integration and e2e: black-box pytest suites against real processes.
integration: all
	@$(MAKE) --no-print-directory SAN=1 tools
	./scripts/pytest.sh $(wildcard lib/tests/*_test.py webhook/tests/*_test.py proxy/tests/*_test.py certs/tests/*_test.py charts/tests/*_test.py)

# Valgrind (memcheck) over a short run of the proxy's integration suites with
# the non-sanitizer binary: any memory error or definite/indirect leak makes
# the proxy exit 97, which the tests check.
.PHONY: valgrind
valgrind: all
	ZW_PROXY_BIN=$(CURDIR)/bin/zerowire-proxy \
	ZW_PROXY_WRAP="valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect" \
	./scripts/pytest.sh proxy/tests/proxy_test.py proxy/tests/coldstart_test.py proxy/tests/datapath_test.py \
		proxy/tests/h2c_test.py proxy/tests/tls_listener_test.py proxy/tests/h2relay_test.py \
		-k "datapath_test or aborts or dies or warm or keepalive or no_route or probe or chunked or expect or malformed or websocket or refused or held_then or readiness or overflow or disconnect or static or spread or h2c_warm or dechunked or many_streams or cold_start_held or client_reset or goaway or curl_over_tls or pipelining_over_tls or old_tls or handshake_timeout or nghttp_over_tls"

# Instruction-count regression guard (callgrind; bench/icount.py): fails when
# instructions per proxied request or per 50-rule admission review exceed the
# committed baseline (bench/icount-baseline.json) by more than 10 %.
.PHONY: icount
icount: all $(BUILD)/test/webhook_tool_mutate
	/usr/bin/python3 bench/icount.py

# Real peers (issue #17): builds the current Kubernetes control plane, the KEDA
# operator and Traefik from their Go modules (once; cached under
# ~/.cache/zerowire, docs/real-peers.md has the times) and runs the suites on
# them (e2e/real). `make e2e` (and so `make check`) does the same after the
# 1.20 suites of e2e/tests.
.PHONY: real-peers
real-peers: all
	@$(MAKE) --no-print-directory SAN=1 tools
	./e2e/build-peers.sh >/dev/null
	./scripts/pytest.sh e2e/real

e2e: all
	@$(MAKE) --no-print-directory SAN=1 tools
	./scripts/pytest.sh e2e/tests
	./e2e/build-peers.sh >/dev/null
	./scripts/pytest.sh e2e/real

# The fault suite of issue #10 alone (docs/security.md), a few minutes; also
# part of integration and e2e.
.PHONY: faults
faults: all
	@$(MAKE) --no-print-directory SAN=1 tools
	./scripts/pytest.sh proxy/tests/proxy_faults_test.py webhook/tests/webhook_faults_test.py e2e/tests/test_faults_kube.py

check: setup
	@$(MAKE) --no-print-directory peers format-check style chart-docs-check unit fuzz integration valgrind icount e2e images

# Every one-time build the tests use (apiserver 1.20, Kubernetes, KEDA, Traefik,
# the add-on, the Go tools), cached; a summary of the time each took at the end.
.PHONY: peers
peers:
	./e2e/build-all.sh

# The chart's README (charts/zerowire/README.md) is generated by helm-docs, built from
# its Go module (e2e/peers/helm-docs), from values.yaml and values.schema.json:
# chart-docs rewrites it, chart-docs-check fails when the committed one is stale.
.PHONY: chart-docs chart-docs-check
chart-docs:
	/usr/bin/python3 scripts/chart-docs.py
chart-docs-check:
	/usr/bin/python3 scripts/chart-docs.py --check

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(C_FILES)
format-check:
	@clang-format --dry-run --Werror $(C_FILES) && echo "format: ok"

# Style rules clang-format does not cover (scripts/style-check.py): banned
# calls, one NULL-comparison form, header comments, docs ending in "## Tests".
.PHONY: style
style:
	@/usr/bin/python3 scripts/style-check.py

# Fuzzing (libFuzzer): <dir>/fuzz/fuzz_*.c -> build/fuzz/fuzz/<dir>_fuzz_*, each run for
# ZW_FUZZ_SECONDS (default 20) from its seed corpus <dir>/fuzz/corpus/<name>/.
# Other <dir>/fuzz/*.c files are helpers linked into each of <dir>'s targets.
FUZZ_SRC := $(wildcard $(COMPONENTS:%=%/fuzz/fuzz_*.c) lib/fuzz/fuzz_*.c)
FUZZERS  := $(foreach f,$(FUZZ_SRC),$(BUILD)/fuzz/$(firstword $(subst /, ,$(f)))_$(basename $(notdir $(f))))
define FUZZ_RULE
$(BUILD)/fuzz/$(1)_%: $(1)/fuzz/%.c $(filter-out $(1)/fuzz/fuzz_%,$(wildcard $(1)/fuzz/*.[ch])) $(if $(filter lib,$(1)),,$(BUILD)/lib$(1).a) $(BUILD)/libzw.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) -I$(1) -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -o $$@ $$(filter %.c %.a,$$^) $$(LDLIBS)
endef
$(foreach c,lib $(COMPONENTS),$(eval $(call FUZZ_RULE,$(c))))
.PHONY: fuzzers
fuzzers: $(FUZZERS)
fuzz:
	@$(MAKE) --no-print-directory SAN=fuzz fuzzers
	./scripts/fuzz.sh $(FUZZ_SRC)

# Container images (README "Images"): a clean release build, the debootstrap
# base (cached in ~/.cache/zerowire/images), each image's root filesystem,
# podman build, OCI archive, SPDX SBOM and smoke run (images/build.sh), then
# images/tests. Seconds when the programs and the recipe are unchanged.
.PHONY: images
images:
	./images/build.sh
	./scripts/pytest.sh images/tests/images_test.py

bench: all
	./bench/run.sh

demo: setup
	./scripts/demo.sh

cluster-up:
	./e2e/cluster-up.sh

cluster-down:
	./e2e/cluster-down.sh

clean:
	rm -rf build bin

# build/images holds image root filesystems (etc/ld.so.conf.d, ...): not make's.
-include $(shell find build -path build/images -prune -o -name '*.d' -type f -print 2>/dev/null)
