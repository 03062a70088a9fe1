package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/natsconn"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// devAPIListen is where `callcontrol dev` serves the API by default (the
// README's curl example uses it).
const devAPIListen = "127.0.0.1:8422"

// apiListenFlags registers the listener flags of the HTTP API into c:
// --api-listen, and unless dev, TLS and mutual TLS.
func apiListenFlags(s *settings, c *api.ListenConfig, defListen string, dev bool) {
	defer s.group(groupConnection)()
	s.fs.StringVar(&c.Addr, "api-listen", defListen, "address of the HTTP API; plain HTTP only on a loopback address, else with --api-tls-cert/--api-tls-key")
	s.fieldFlags(map[string]string{"Addr": "api-listen"})
	if dev {
		return
	}
	s.fs.StringVar(&c.CertFile, "api-tls-cert", "", "server certificate (PEM) of the HTTP API")
	s.fs.StringVar(&c.KeyFile, "api-tls-key", "", "server key (PEM) of the HTTP API")
	s.fs.StringVar(&c.ClientCAFile, "api-client-ca", "", "PEM file of the CA that signs client certificates: mutual TLS, a client without one is refused")
	s.fieldFlags(map[string]string{"CertFile": "api-tls-cert", "KeyFile": "api-tls-key", "ClientCAFile": "api-client-ca"})
}

// newAPIServer builds the API over js with tokens (cfg's zero fields take
// the api package's defaults).
func newAPIServer(cfg api.Config, js jetstream.JetStream, tokens *api.Tokens, log zerolog.Logger) (*api.Server, error) {
	cfg.JetStream, cfg.Tokens, cfg.Logger = js, tokens, log.With().Str("component", "api").Logger()
	return api.New(cfg)
}

// apiStreams are the streams the API reads, for /readyz.
var apiStreams = devStreams

// apiRole is what `callcontrol api` runs with, read and checked.
type apiRole struct {
	s      *settings
	nf     natsFlags
	lf     logFlags
	lc     api.ListenConfig
	hf     healthFlags
	cfg    api.Config
	tokens *api.Tokens
}

// apiParse reads and checks the flags of `callcontrol api`.
func apiParse(args []string, stdout io.Writer) (*apiRole, error) {
	a := &apiRole{s: newSettings("api", stdout)}
	s := a.s
	var (
		tokens string
		rps    float64
	)
	a.nf.register(s, defaultNATSURL)
	a.nf.registerRole(s)
	apiListenFlags(s, &a.lc, ":8443", false)
	s.fs.StringVar(&tokens, "api-tokens", "", "JSON token file: the SHA-256 of each bearer token, its name, scopes and optional agent range (required)")
	s.fs.Float64Var(&rps, "api-rate", api.DefaultRate, "requests per second each token may send (sustained)")
	s.fs.IntVar(&a.cfg.Burst, "api-burst", api.DefaultBurst, "requests each token may send at once")
	a.lf.register(s, "json")
	a.hf.register(s)
	if err := s.parse(args); err != nil {
		return nil, err
	}
	if err := s.positive("api-rate", "api-burst"); err != nil {
		return nil, err
	}
	a.cfg.Rate = rate.Limit(rps)
	if err := a.lc.Validate(); err != nil {
		return nil, s.explain(err)
	}
	if tokens == "" {
		return nil, fmt.Errorf("%s: a token file is required", flagRef("api-tokens"))
	}
	var err error
	if a.tokens, err = api.LoadTokens(tokens); err != nil {
		return nil, fmt.Errorf("%s: %w", flagRef("api-tokens"), err)
	}
	return a, nil
}

// runAPI runs the HTTP API role: a client of NATS like the CLI, serving
// until ctx ends.
func runAPI(ctx context.Context, args []string, stdout io.Writer) error {
	a, err := apiParse(args, stdout)
	if err != nil {
		return err
	}
	log, err := a.lf.logger(stderr)
	if err != nil {
		return err
	}
	a.nf.log = &log
	obs, err := health.NewObservability(apiStreams, 0)
	if err != nil {
		return err
	}
	l, err := api.Listen(a.lc)
	if err != nil {
		return a.s.explain(err)
	}
	defer l.Close()
	return serveAPIRole(ctx, &a.nf, &a.hf, obs, l, func(js jetstream.JetStream) (*api.Server, error) {
		return newAPIServer(a.cfg, js, a.tokens, log)
	}, log)
}

// serveAPIRole connects to NATS (waiting for it), provisions the shared
// and API parts, and serves the API on l until ctx ends.
func serveAPIRole(ctx context.Context, nf *natsFlags, hf *healthFlags, obs *health.Observability, l *api.Listener,
	newServer func(jetstream.JetStream) (*api.Server, error), log zerolog.Logger) error {
	stopHealth, bind, err := obs.StartLate(ctx, hf.config())
	if err != nil {
		return listenError(err)
	}
	defer stopHealth()
	nc, js, err := nf.connectWait(ctx, "api")
	if err != nil {
		return err
	}
	defer natsconn.Drain(nc, 5*time.Second)
	if err := topology.Ensure(ctx, js, topology.Config{Replicas: nf.replicas}, topology.API); err != nil {
		return err
	}
	if err := bind(nc, js); err != nil {
		return err
	}
	srv, err := newServer(js)
	if err != nil {
		return err
	}
	log.Info().Str("url", l.URL()).Msg("api serving")
	return l.Serve(ctx, srv)
}

// Files `callcontrol dev` writes in its data directory.
const (
	devTokenFile = "api-tokens.json" // the token file (the hash)
	devTokenText = "api-token"       // the token itself, for scripts (the README's curl)
)

// devToken writes into dir a token file with one new token named "dev"
// of every scope, and the token beside it.
func devToken(dir string) (token, file string, tokens *api.Tokens, err error) {
	token, data, err := api.NewTokenFile("dev", api.AllScopes)
	if err != nil {
		return "", "", nil, err
	}
	file = filepath.Join(dir, devTokenFile)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return "", "", nil, fmt.Errorf("api token file: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, devTokenText), []byte(token+"\n"), 0o600); err != nil {
		return "", "", nil, fmt.Errorf("api token: %w", err)
	}
	tokens, err = api.ParseTokens(data)
	return token, file, tokens, err
}

// devAPI binds dev's API and returns the banner line and the role to run
// beside the worker and the poller.
func (d *devSettings) devAPI(js jetstream.JetStream) (line string, serve func(context.Context) error, err error) {
	token, file, tokens, err := devToken(d.dataDir)
	if err != nil {
		return "", nil, err
	}
	srv, err := newAPIServer(api.Config{}, js, tokens, d.wcfg.Logger)
	if err != nil {
		return "", nil, err
	}
	l, err := api.Listen(d.lc)
	if err != nil {
		return "", nil, d.explain(err)
	}
	line = fmt.Sprintf("HTTP API %s: bearer token %s (also in %s; token file %s)",
		l.URL(), token, filepath.Join(d.dataDir, devTokenText), file)
	d.closeAPI = func() { _ = l.Close() } // if serve never runs
	return line, func(ctx context.Context) error { return l.Serve(ctx, srv) }, nil
}
