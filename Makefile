# lpsec: `make test` is the whole test suite, as CI runs it.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 3s

.PHONY: test fmt-check vet staticcheck unit fuzz demo bench

test: fmt-check vet staticcheck unit fuzz

fmt-check:
	@echo "== gofmt"
	@out=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -print0 | xargs -0 gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt wants to change:"; echo "$$out"; exit 1; fi

vet:
	@echo "== go vet"
	$(GO) vet ./...

staticcheck:
	@echo "== staticcheck"
	$(GO) tool staticcheck ./...

unit:
	@echo "== go test -race (PostgreSQL-backed tests enabled)"
	CI=$${CI:-} ./scripts/with-postgres.sh $(GO) test -race -count=1 ./...
	@echo "== allocation bounds (TestXxxAllocs: the race detector makes sync.Pool drop items, so they run without it)"
	$(GO) test -count=1 -run 'Allocs$$' ./...

fuzz:
	@echo "== fuzz pass ($(FUZZTIME) per target)"
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz-all.sh

demo:
	$(GO) run ./examples/demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
