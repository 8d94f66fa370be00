# hc-agent — build, test, lint, bench, demo, package.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN       := bin/hc-agent
FUZZTIME  ?= 10000x

.PHONY: all build test unit fuzz lint bench microbench demo package systest systest-if-root clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/hc-agent

# test: the whole suite. Root-only tests (network namespaces, the systemd
# system test) skip with a message when not run as root.
test: lint unit fuzz systest-if-root

# systest-if-root: the systemd system test when this is root and has what it
# needs (.ci/run installs it); a message otherwise.
systest-if-root:
	@if [ "$$(id -u)" = 0 ] && command -v systemd-nspawn >/dev/null && command -v debootstrap >/dev/null && command -v $(NFPM) >/dev/null; then \
	  $(MAKE) --no-print-directory systest; \
	else \
	  echo "systest skipped: needs root, systemd-nspawn (systemd-container), debootstrap and nfpm"; \
	fi

unit:
	$(GO) test -count=1 -timeout 12m ./...

# fuzz: a short run of every fuzz target (seed corpora also run in `unit`).
# The budget is a count of inputs: with a duration, Go 1.26's fuzz
# coordinator can report "context deadline exceeded" as a failure when the
# time runs out on a busy machine (golang/go#75804, fixed in Go 1.27).
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    if ! out=$$($(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg 2>&1); then \
	      echo "$$out"; exit 1; \
	    fi; \
	  done; \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed, skipped"; fi

# bench: the benchmark table of issue 8 on the simulated cloud (root).
bench: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/hc-bench ./cmd/hc-bench
	bin/hc-bench --agent $(BIN)

# microbench: the Go benchmarks of every package.
microbench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# demo: the main job. Needs root (network namespaces); leaves nothing behind.
demo: build
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/hc-demo ./cmd/hc-demo
	bin/hc-demo --agent $(BIN)

# package: .deb and .rpm in dist/ with nfpm (config: packaging/nfpm.yaml).
NFPM        ?= nfpm
PKG_VERSION ?= $(shell v=$$(git describe --tags --abbrev=0 2>/dev/null | sed 's/^v//'); echo "$${v:-0.0.0}~git$(COMMIT)")
package: build
	@command -v $(NFPM) >/dev/null || { echo "nfpm not found: go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"; exit 1; }
	mkdir -p dist
	PKG_VERSION='$(PKG_VERSION)' ARCH=$$($(GO) env GOARCH) $(NFPM) package --config packaging/nfpm.yaml --packager deb --target dist/
	PKG_VERSION='$(PKG_VERSION)' ARCH=$$($(GO) env GOARCH) $(NFPM) package --config packaging/nfpm.yaml --packager rpm --target dist/

# systest: the .deb under a real systemd (root; internal/systest). Boots a
# Debian 12 root with systemd-nspawn in a network namespace of its own with a
# metadata fake, installs the package and checks READY, STATUS=, reload, the
# watchdog, stop, a configuration error and purge. The root is made by
# debootstrap on the first run (about 2 minutes, downloads ~60 MB) and cached
# in $(SYSTEST_CACHE); later runs take about 10 s plus `make package`.
SYSTEST_CACHE ?= /var/cache/hc-agent-systest
systest: package
	HCAGENT_SYSTEST=1 HCAGENT_SYSTEST_CACHE='$(SYSTEST_CACHE)' $(GO) test -count=1 -v -timeout 10m -run '^TestSystemd$$' ./internal/systest/

clean:
	rm -rf bin dist out
