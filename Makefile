# lpsec: `make test` is the whole test suite, as CI runs it.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 3s
# The patched Go release go.mod's toolchain line names, also on machines
# whose go.env says GOTOOLCHAIN=local: the tests and govulncheck's view of
# the standard library are then those of the release with the fixes.
export GOTOOLCHAIN ?= $(shell sed -n 's/^toolchain //p' go.mod)
# Development tools live in their own module (tools/go.mod).
TOOL := $(GO) tool -modfile=tools/go.mod
# Per-run records of finished tests, for the skip summary.
RECORDS ?= $(CURDIR)/.cache/test-records

.PHONY: test peers fmt-check vet staticcheck vulncheck tools-test unit allocs fuzz skips deps demo bench

# Each stage prints a progress line with the time it took; the stage times,
# the skipped tests and their reasons come at the end (scripts/stages.sh).
test:
	@rm -f $(RECORDS)/totals
	@TOTALS=$(RECORDS)/totals ./scripts/stages.sh peers fmt-check vet staticcheck tools-test vulncheck unit allocs fuzz skips

peers:
	@./scripts/debian-peers.sh

deps:
	./scripts/debian-peers.sh --install

fmt-check:
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

staticcheck:
	$(TOOL) staticcheck ./...

tools-test:
	$(GO) -C tools vet ./...
	$(GO) -C tools test -count=1 ./...

# Offline govulncheck against the pinned vulnerability database snapshot
# (tools/vulndb.version; policy and refresh: scripts/vulncheck.sh).
vulncheck:
	./scripts/vulncheck.sh

# The race pass runs PostgreSQL-backed tests against a throwaway cluster.
unit:
	@mkdir -p $(RECORDS) && rm -f $(RECORDS)/race.jsonl
	set -o pipefail; CI=$${CI:-} ./scripts/with-postgres.sh $(GO) test -json -race -count=1 ./... \
	  | $(GO) -C tools run ./testsum -record $(RECORDS)/race.jsonl

# TestXxxAllocs: the race detector makes sync.Pool drop items, so they run
# without it. Every benchmark runs once in the same pass (same test binaries),
# so that a benchmark or its baseline that no longer works fails here rather
# than at the next `make bench`.
allocs:
	@mkdir -p $(RECORDS) && rm -f $(RECORDS)/allocs.jsonl
	set -o pipefail; CI=$${CI:-} ./scripts/with-postgres.sh $(GO) test -json -count=1 -run 'Allocs$$' -bench . -benchtime 1x ./... \
	  | $(GO) -C tools run ./testsum -record $(RECORDS)/allocs.jsonl

fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-all.sh

# Tests skipped in every pass they ran in, with their reasons; with CI=true
# any skip not listed in .ci/expected-skips fails.
skips:
	@mkdir -p $(RECORDS)
	@$(GO) -C tools run ./testsum skips -module github.com/lpsec/lpsec -expected $(CURDIR)/.ci/expected-skips -totals $(RECORDS)/totals \
	  $(if $(CI),-strict) $(RECORDS)/race.jsonl $(RECORDS)/allocs.jsonl

demo:
	$(GO) run ./examples/demo

bench:
	./bench/all.sh
