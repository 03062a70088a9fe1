# callcontrol: the two set-up commands are `make run` and `make test`.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/callcontrol
IMAGE   ?= callcontrol:dev
NATS_IMAGE ?= callcontrol-nats:dev
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run build test test/short lint tidy fuzz bench model soak clean

help: ## list the targets
	@grep -E '^[a-z0-9/]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## run everything in one process: embedded NATS + gateway simulator + worker
	$(GO) run ./cmd/callcontrol dev

build: ## build a static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/callcontrol

images: ## build the FROM-scratch images callcontrol:dev and callcontrol-nats:dev (classic builder, offline)
	@set -e; ctx=$$(mktemp -d); trap 'rm -rf "$$ctx"' EXIT; \
	mkdir -p "$$ctx/callcontrol" "$$ctx/nats"; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o "$$ctx/callcontrol/callcontrol" ./cmd/callcontrol; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o "$$ctx/nats/nats-server" github.com/nats-io/nats-server/v2; \
	cp $(CA_BUNDLE) "$$ctx/callcontrol/ca-certificates.crt"; \
	cp deployments/Dockerfile "$$ctx/callcontrol/Dockerfile"; \
	cp deployments/nats/Dockerfile "$$ctx/nats/Dockerfile"; \
	DOCKER_BUILDKIT=0 docker build -q -t $(IMAGE) "$$ctx/callcontrol"; \
	DOCKER_BUILDKIT=0 docker build -q -t $(NATS_IMAGE) "$$ctx/nats"

test: ## vet, then every test with the race detector against real NATS and the simulator
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

.PHONY: e2e
e2e: ## container fault suite (Docker; FROM-scratch images built locally): kills, partitions, NATS leader loss, writes e2e/results.md
	-@docker rm -f $$(docker ps -aq --filter label=com.callcontrol.e2e=true) >/dev/null 2>&1 || true
	-@docker network prune -f --filter label=com.callcontrol.e2e=true >/dev/null 2>&1 || true
	-@docker rm -f $$(docker ps -aq --filter label=org.testcontainers=true) >/dev/null 2>&1 || true
	-@docker network prune -f --filter label=org.testcontainers=true >/dev/null 2>&1 || true
	@status=0; TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_HOST_OVERRIDE=localhost $(GO) test -tags e2e -count=1 -timeout 25m -v ./e2e/ || status=$$?; \
	docker rm -f $$(docker ps -aq --filter label=com.callcontrol.e2e=true) >/dev/null 2>&1 || true; \
	docker network prune -f --filter label=com.callcontrol.e2e=true >/dev/null 2>&1 || true; \
	docker rm -f $$(docker ps -aq --filter label=org.testcontainers=true) >/dev/null 2>&1 || true; \
	docker network prune -f --filter label=org.testcontainers=true >/dev/null 2>&1 || true; \
	exit $$status

soak: ## seeded randomized soak of the whole system with faults (SEED=N to replay a run, SOAK_DURATION, default 2m); prints the checker's table
	$(GO) test -tags soak -run TestSoak -count=1 -timeout 30m -v ./internal/soak/

test/short: ## the tests without the race detector
	$(GO) test -count=1 $(PKGS)

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

bench: ## measure: hot-path allocations, then callcontrol bench (ratios to baselines of the same run) into docs/bench/
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./worker/ ./gateway/
	$(GO) build -ldflags "-X main.version=$$(git describe --always --dirty 2>/dev/null)" -o $(BIN) ./cmd/callcontrol
	$(BIN) bench --json docs/bench/results.json --md docs/bench/results.md --svg docs/bench/chart.svg

model: ## model-check the worker's lease/ledger protocol with spin (docs/model/ledger.pml, and that its known-bad variants still fail)
	docs/model/check

# Fuzz targets as <package>:<target>; go test fuzzes one target per run.
FUZZTIME ?= 30s
FUZZ_TARGETS ?= ./events/:FuzzDecodeDisconnect ./gateway/:FuzzDecodeResponse ./gateway/:FuzzRequest ./poller/:FuzzDecodeEvent ./worker/:FuzzOneLine

fuzz: ## run every fuzz target for FUZZTIME each (default 30s); seeds in <pkg>/testdata/fuzz/
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*}, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) "$${t%%:*}"; \
	done

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build output
	rm -rf bin/
