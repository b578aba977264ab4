# lambda-endpoint: see README.md.
GO      ?= go
BIN     := bin/lambda-endpoint
CONFIG  := config/lambda.example.toml
RUNDIR  := var
PKGS    := ./...
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)

.PHONY: all build deps run test test-short bench fuzz lint fmt clean install

all: build

## build: compile bin/lambda-endpoint
build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/lambda-endpoint

## deps: the one dependency step (scripts/deps): as root, apt-get install
##       bpftrace, systemtap, sudo, binutils and systemd when missing; otherwise says what to install
deps:
	@DEPS_OPTIONAL=$${DEPS_OPTIONAL:-1} scripts/deps

## install: build, then (as root) install the systemd service (scripts/install):
##          $(PREFIX)/bin/lambda-endpoint, /etc/systemd/system/lambda-endpoint.service
##          (ExecStart in $(PREFIX)/bin) and, only when absent, the 0600
##          /etc/lambda-endpoint/lambda.toml with a fresh endpoint-uuid and secret
##          (platform-url left empty for you to set). DESTDIR= stages the files
##          elsewhere; PREFIX defaults to /usr/local. Where $(GO) is not on the
##          PATH (sudo's secure_path), it installs the bin/lambda-endpoint of an
##          earlier make build
PREFIX  ?= /usr/local
install: $(if $(shell command -v $(GO) 2>/dev/null),build)
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BIN="$(BIN)" CONFIG="$(CONFIG)" scripts/install

## run: the endpoint on the embedded SQLite store with the example config,
##      copied to the private 0600 file var/lambda.toml only when absent (your
##      edits stay); the reference receiver beside it when platform-url is
##      local and free (scripts/run)
run: deps build
	@mkdir -p $(RUNDIR)
	@if [ ! -e $(RUNDIR)/lambda.toml ]; then install -m 600 $(CONFIG) $(RUNDIR)/lambda.toml; \
	  echo "created $(RUNDIR)/lambda.toml from $(CONFIG)"; else echo "using the existing $(RUNDIR)/lambda.toml"; fi
	@BIN=$(BIN) CONFIG=$(RUNDIR)/lambda.toml RECEIVED=$(RUNDIR)/received scripts/run

## test: deps, vet, then every test with the race detector (real PostgreSQL, SQLite, bpftrace)
test: deps
	$(GO) vet $(PKGS)
	$(GO) vet -tags bench ./tests/bench
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

## bench: the Go benchmarks of every package, then the whole-process benchmarks of
##        tests/bench (root, bpftrace and gcc for the traced-program section);
##        writes BENCHMARKS.md (not part of test)
bench:
	@mkdir -p $(RUNDIR)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 30m $(PKGS) >$(RUNDIR)/gobench.txt; \
	  s=$$?; cat $(RUNDIR)/gobench.txt; exit $$s
	BENCH_OUT=$(CURDIR)/BENCHMARKS.md BENCH_GOBENCH=$(CURDIR)/$(RUNDIR)/gobench.txt \
	  $(GO) test -tags bench -run '^TestBenchReport$$' -count=1 -timeout 60m -v ./tests/bench

## fuzz: run every fuzz target for FUZZTIME each (default 20s)
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags bench ./tests/bench

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin $(RUNDIR)
