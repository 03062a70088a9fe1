package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/internal/health"
	"github.com/callcontrol/callcontrol/internal/topology"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// apiFlags are the HTTP API's listener settings (`callcontrol api`; dev
// has --api-listen only, and writes its own token file).
type apiFlags struct {
	listen, tokens            string
	tlsCert, tlsKey, clientCA string
}

// devAPIListen is where `callcontrol dev` serves the API by default (the
// README's curl example uses it).
const devAPIListen = "127.0.0.1:8422"

func (a *apiFlags) register(s *settings, defListen string, files bool) {
	defer s.group(groupConnection)()
	s.fs.StringVar(&a.listen, "api-listen", defListen, "address of the HTTP API; plain HTTP only on a loopback address, else with --api-tls-cert/--api-tls-key")
	if !files {
		return
	}
	s.fs.StringVar(&a.tokens, "api-tokens", "", "JSON token file: the SHA-256 of each bearer token, its name, scopes and optional agent range")
	s.fs.StringVar(&a.tlsCert, "api-tls-cert", "", "server certificate (PEM) of the HTTP API")
	s.fs.StringVar(&a.tlsKey, "api-tls-key", "", "server key (PEM) of the HTTP API")
	s.fs.StringVar(&a.clientCA, "api-client-ca", "", "PEM file of the CA that signs client certificates: mutual TLS, a client without one is refused")
}

// check refuses settings that cannot be served safely: plain HTTP off
// loopback, half a key pair, mTLS without TLS.
func (a *apiFlags) check() error {
	switch {
	case (a.tlsCert == "") != (a.tlsKey == ""):
		return fmt.Errorf("%s and %s: give both or neither", flagRef("api-tls-cert"), flagRef("api-tls-key"))
	case a.clientCA != "" && a.tlsCert == "":
		return fmt.Errorf("%s: mutual TLS needs %s and %s", flagRef("api-client-ca"), flagRef("api-tls-cert"), flagRef("api-tls-key"))
	case a.tlsCert == "" && !loopback(a.listen):
		return fmt.Errorf("%s: %q is not a loopback address: plain HTTP is refused there; set %s and %s",
			flagRef("api-listen"), a.listen, flagRef("api-tls-cert"), flagRef("api-tls-key"))
	}
	return nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tlsConfig is the listener's TLS, nil for plain HTTP.
func (a *apiFlags) tlsConfig() (*tls.Config, error) {
	if a.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(a.tlsCert, a.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", flagRef("api-tls-cert"), flagRef("api-tls-key"), err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.clientCA == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(a.clientCA)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagRef("api-client-ca"), err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in %s", flagRef("api-client-ca"), a.clientCA)
	}
	tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return tc, nil
}

// HTTP server limits: a Prefer: wait answer may take api.DefaultMaxWait.
const (
	apiReadTimeout   = 10 * time.Second
	apiHeaderTimeout = 5 * time.Second
	apiWriteTimeout  = api.DefaultMaxWait + 15*time.Second
	apiIdleTimeout   = 2 * time.Minute
	apiMaxHeader     = 16 << 10
	apiShutdown      = 5 * time.Second
)

// apiListener is the API's listener, bound before anything is announced.
type apiListener struct {
	ln  net.Listener
	srv *http.Server
}

// listenAPI binds the API's address (an error names --api-listen).
func (a *apiFlags) listenAPI() (*apiListener, error) {
	tc, err := a.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", a.listen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagRef("api-listen"), err)
	}
	srv := &http.Server{ReadTimeout: apiReadTimeout, ReadHeaderTimeout: apiHeaderTimeout, WriteTimeout: apiWriteTimeout,
		IdleTimeout: apiIdleTimeout, MaxHeaderBytes: apiMaxHeader, TLSConfig: tc}
	return &apiListener{ln: ln, srv: srv}, nil
}

// URL is the API's base URL.
func (l *apiListener) URL() string {
	scheme := "http"
	if l.srv.TLSConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + l.ln.Addr().String()
}

// serve serves h until ctx ends, then shuts down within apiShutdown.
func (l *apiListener) serve(ctx context.Context, h http.Handler) error {
	l.srv.Handler = h
	done := make(chan error, 1)
	go func() {
		if l.srv.TLSConfig != nil {
			done <- l.srv.ServeTLS(l.ln, "", "")
			return
		}
		done <- l.srv.Serve(l.ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("http api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), apiShutdown)
	defer cancel()
	err := l.srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// newAPIServer builds the API over js with tokens.
func newAPIServer(js jetstream.JetStream, tokens *api.Tokens, log zerolog.Logger) (*api.Server, error) {
	return api.New(api.Config{JetStream: js, Tokens: tokens, Logger: log.With().Str("component", "api").Logger()})
}

// apiStreams are the streams the API reads, for /readyz.
var apiStreams = devStreams

// runAPI runs the HTTP API role: a client of NATS like the CLI, serving
// until ctx ends.
func runAPI(ctx context.Context, args []string, stdout io.Writer) error {
	s := newSettings("api", stdout)
	var (
		nf natsFlags
		lf logFlags
		af apiFlags
		hf healthFlags
	)
	nf.register(s, defaultNATSURL)
	nf.registerRole(s)
	af.register(s, ":8443", true)
	lf.register(s, "json")
	hf.register(s)
	if err := s.parse(args); err != nil {
		return err
	}
	if err := af.check(); err != nil {
		return err
	}
	if af.tokens == "" {
		return fmt.Errorf("%s: a token file is required", flagRef("api-tokens"))
	}
	tokens, err := api.LoadTokens(af.tokens)
	if err != nil {
		return fmt.Errorf("%s: %w", flagRef("api-tokens"), err)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	nf.log = &log
	obs, err := health.NewObservability(apiStreams, 0)
	if err != nil {
		return err
	}
	l, err := af.listenAPI()
	if err != nil {
		return err
	}
	defer l.ln.Close()
	return serveAPIRole(ctx, &nf, &hf, obs, l, tokens, log)
}

// serveAPIRole connects to NATS (waiting for it), provisions the shared
// and API parts, and serves the API on l until ctx ends.
func serveAPIRole(ctx context.Context, nf *natsFlags, hf *healthFlags, obs *health.Observability, l *apiListener, tokens *api.Tokens, log zerolog.Logger) error {
	stopHealth, bind, err := hf.startLate(ctx, obs)
	if err != nil {
		return err
	}
	defer stopHealth()
	nc, js, err := nf.connectWait(ctx, "api")
	if err != nil {
		return err
	}
	defer drain(nc, 5*time.Second)
	if err := provisionRole(ctx, js, topology.Config{Replicas: nf.replicas}, topology.API); err != nil {
		return err
	}
	if err := bind(nc, js); err != nil {
		return err
	}
	srv, err := newAPIServer(js, tokens, log)
	if err != nil {
		return err
	}
	log.Info().Str("url", l.URL()).Msg("api serving")
	return l.serve(ctx, srv)
}

// Files `callcontrol dev` writes in its data directory.
const (
	devTokenFile = "api-tokens.json" // the token file (the hash)
	devTokenText = "api-token"       // the token itself, for scripts (the README's curl)
)

// devToken writes a token file with one new token of every scope, named
// "dev", and the token beside it, in dir; it returns the token's files
// and the tokens.
func devToken(dir string) (token, file string, tokens *api.Tokens, err error) {
	if token, err = api.NewToken(); err != nil {
		return "", "", nil, err
	}
	f := api.TokenFile{Tokens: []api.TokenEntry{{Name: "dev", SHA256: api.HashToken(token), Scopes: api.AllScopes}}}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return "", "", nil, err
	}
	file = filepath.Join(dir, devTokenFile)
	if err := os.WriteFile(file, append(data, '\n'), 0o600); err != nil {
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
	if err := d.af.check(); err != nil {
		return "", nil, err
	}
	token, file, tokens, err := devToken(d.dataDir)
	if err != nil {
		return "", nil, err
	}
	srv, err := newAPIServer(js, tokens, d.wcfg.Logger)
	if err != nil {
		return "", nil, err
	}
	l, err := d.af.listenAPI()
	if err != nil {
		return "", nil, err
	}
	line = fmt.Sprintf("HTTP API %s: bearer token %s (also in %s; token file %s)",
		l.URL(), token, filepath.Join(d.dataDir, devTokenText), file)
	d.closeAPI = func() { _ = l.ln.Close() } // if serve never runs
	return line, func(ctx context.Context) error { return l.serve(ctx, srv) }, nil
}
