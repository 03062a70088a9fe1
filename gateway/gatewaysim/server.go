package gatewaysim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServerConfig of a [Server]. The zero value serves the simulator over
// HTTPS with a self-signed certificate.
type ServerConfig struct {
	// PlainHTTP serves plain HTTP instead of HTTPS. Default false.
	PlainHTTP bool
	// HTTP1Only refuses HTTP/2 (the connection-reset faults hijack an
	// HTTP/1 connection). Default false: HTTP/2 is offered over TLS.
	HTTP1Only bool
	// Handler serves the requests instead of the simulator itself, for a
	// wrapper that observes or alters the exchanges. Default nil: the Sim.
	Handler http.Handler
	// ErrorLog receives the HTTP server's errors (a client closing a
	// connection mid-handshake, ...). Default nil: the standard logger.
	ErrorLog *log.Logger
	// ShutdownTimeout bounds [Server.Close]'s wait for requests in flight.
	// Default 5s.
	ShutdownTimeout time.Duration
}

// Server serves a [Sim] on a listener, over HTTPS with a certificate
// generated for the listener's address unless ServerConfig.PlainHTTP.
type Server struct {
	sim     *Sim
	srv     *http.Server
	ln      net.Listener
	url     string
	certPEM []byte
	roots   *x509.CertPool
	timeout time.Duration
	close   func() error
}

// NewServer returns a Server of sim on ln, not serving yet (see
// [Server.Run]). It owns ln from then on: on error ln is closed.
func NewServer(sim *Sim, ln net.Listener, cfg ServerConfig) (*Server, error) {
	h := cfg.Handler
	if h == nil {
		h = sim
	}
	s := &Server{sim: sim, ln: ln, timeout: cfg.ShutdownTimeout,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: cfg.ErrorLog}}
	if s.timeout == 0 {
		s.timeout = 5 * time.Second
	}
	s.close = sync.OnceValue(s.shutdown)
	if cfg.PlainHTTP {
		s.url = "http://" + ln.Addr().String()
		return s, nil
	}
	if err := s.useTLS(cfg.HTTP1Only); err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// useTLS wraps the listener in TLS with a new self-signed certificate.
func (s *Server) useTLS(http1Only bool) error {
	host, _, _ := net.SplitHostPort(s.ln.Addr().String())
	certPEM, keyPEM, err := GenerateCert(host)
	if err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("gatewaysim: certificate: %w", err)
	}
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if http1Only {
		s.srv.TLSConfig.NextProtos = []string{"http/1.1"}
		s.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.roots = x509.NewCertPool()
	s.roots.AppendCertsFromPEM(certPEM)
	s.ln = tls.NewListener(s.ln, s.srv.TLSConfig)
	s.url, s.certPEM = "https://"+s.ln.Addr().String(), certPEM
	return nil
}

// URL is the simulator's base URL: https://host:port (http:// for plain
// HTTP), for gateway.Config.BaseURL.
func (s *Server) URL() string { return s.url }

// CertPEM is the PEM of the server's self-signed certificate (for
// --gateway-ca), nil for plain HTTP.
func (s *Server) CertPEM() []byte { return s.certPEM }

// RootCAs is a pool holding the server's certificate only (for
// gateway.Config.RootCAs), nil for plain HTTP.
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Sim is the simulator served.
func (s *Server) Sim() *Sim { return s.sim }

// Run serves until ctx ends or [Server.Close] is called, then closes the
// server as Close does. It returns nil after a clean stop, or the error
// that ended serving.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) { // Close was called
			return s.Close()
		}
		return err
	case <-ctx.Done():
	}
	err := s.Close()
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// Close closes the simulator (releasing held polls and fault holds) and
// shuts the server down, waiting up to ShutdownTimeout for requests in
// flight. It is idempotent; later calls return the first one's result.
func (s *Server) Close() error { return s.close() }

func (s *Server) shutdown() error {
	s.sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	// Shutdown closes the listener only when serving; close it anyway.
	if cerr := s.ln.Close(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}
