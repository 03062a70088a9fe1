# callcontrol: the two set-up commands are `make run` and `make test`.
GO      ?= go
PKGS    ?= ./...
BIN     ?= bin/callcontrol
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: help run build test test/short lint tidy fuzz bench clean

help: ## list the targets
	@grep -E '^[a-z/]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## run everything in one process: embedded NATS + gateway simulator + worker
	$(GO) run ./cmd/callcontrol dev

build: ## build a static binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/callcontrol

test: ## vet, then every test with the race detector against real NATS and the simulator
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test/short: ## the tests without the race detector
	$(GO) test -count=1 $(PKGS)

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

bench: ## benchmarks: pipeline throughput as ratios to baselines measured in the same run, hot-path allocations
	$(GO) test -run='^$$' -bench='Ceiling|Pipelining' -benchtime=1x -count=1 ./worker/
	$(GO) test -run='^$$' -bench='Decode|Encode' -benchmem -count=1 ./worker/

fuzz: ## fuzz the command decoder for 60s
	$(GO) test -run='^$$' -fuzz=FuzzDecodeDisconnect -fuzztime=60s ./events/

tidy: ## go mod tidy
	$(GO) mod tidy

clean: ## remove build output
	rm -rf bin/
