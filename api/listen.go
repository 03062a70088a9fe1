package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Limits of the HTTP server [Listen] makes. The write timeout leaves a
// Prefer: wait answer [DefaultMaxWait] (GET /v1/events sets its own
// deadline per write).
const (
	ReadTimeout       = 10 * time.Second
	ReadHeaderTimeout = 5 * time.Second
	WriteTimeout      = DefaultMaxWait + 15*time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 16 << 10
	// ShutdownTimeout bounds [Listener.Serve]'s graceful shutdown.
	ShutdownTimeout = 5 * time.Second
)

// ListenConfig is where and how the API is served.
type ListenConfig struct {
	// Addr is host:port. Without TLS it must be a loopback address.
	Addr string
	// CertFile and KeyFile (PEM) turn TLS on; both or neither.
	CertFile, KeyFile string
	// ClientCAFile (PEM), with TLS, requires client certificates signed
	// by it (mutual TLS).
	ClientCAFile string
	// WriteTimeout of a response (GET /v1/events sets its own per write):
	// default [WriteTimeout].
	WriteTimeout time.Duration
}

// ErrPlainHTTP: plain HTTP is served on loopback addresses only.
var ErrPlainHTTP = errors.New("plain HTTP is refused off loopback: set CertFile and KeyFile")

// ListenError is a ListenConfig that cannot be served: Field names the
// field (Addr, CertFile, KeyFile, ClientCAFile).
type ListenError struct {
	Field string
	Err   error
}

func (e *ListenError) Error() string { return "api: " + e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }

// Validate refuses plain HTTP off loopback, half a key pair and mutual
// TLS without TLS, as a [*ListenError].
func (c ListenConfig) Validate() error {
	switch {
	case (c.CertFile == "") != (c.KeyFile == ""):
		return &ListenError{Field: "CertFile", Err: errors.New("give CertFile and KeyFile, or neither")}
	case c.ClientCAFile != "" && c.CertFile == "":
		return &ListenError{Field: "ClientCAFile", Err: errors.New("mutual TLS needs CertFile and KeyFile")}
	case c.CertFile == "" && !Loopback(c.Addr):
		return &ListenError{Field: "Addr", Err: fmt.Errorf("%q: %w", c.Addr, ErrPlainHTTP)}
	}
	return nil
}

// Loopback reports whether addr (host:port) is a loopback address.
func Loopback(addr string) bool {
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

// tlsConfig is c's TLS, nil for plain HTTP.
func (c ListenConfig) tlsConfig() (*tls.Config, error) {
	if c.CertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, &ListenError{Field: "CertFile", Err: err}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(c.ClientCAFile)
	if err != nil {
		return nil, &ListenError{Field: "ClientCAFile", Err: err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &ListenError{Field: "ClientCAFile", Err: fmt.Errorf("no PEM certificate in %s", c.ClientCAFile)}
	}
	tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return tc, nil
}

// Listener is a bound address and the HTTP server to serve it.
type Listener struct {
	ln  net.Listener
	srv *http.Server
	url string
}

// Listen validates c, loads its certificates and binds its address.
// Close it if [Listener.Serve] is not called.
func Listen(c ListenConfig) (*Listener, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, &ListenError{Field: "Addr", Err: err}
	}
	wt := c.WriteTimeout
	if wt == 0 {
		wt = WriteTimeout
	}
	srv := &http.Server{ReadTimeout: ReadTimeout, ReadHeaderTimeout: ReadHeaderTimeout, WriteTimeout: wt,
		IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes, TLSConfig: tc}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	return &Listener{ln: ln, srv: srv, url: scheme + "://" + ln.Addr().String()}, nil
}

// URL is the base URL served, http(s)://host:port.
func (l *Listener) URL() string { return l.url }

// Close closes the listener (Serve does when it returns).
func (l *Listener) Close() error { return l.ln.Close() }

// Serve serves h until ctx ends, then shuts down gracefully within
// [ShutdownTimeout]. It returns nil after a clean shutdown.
func (l *Listener) Serve(ctx context.Context, h http.Handler) error {
	l.srv.Handler = h
	done := make(chan error, 1)
	tls := l.srv.TLSConfig != nil
	go func() {
		if tls {
			done <- l.srv.ServeTLS(l.ln, "", "")
			return
		}
		done <- l.srv.Serve(l.ln)
	}()
	select {
	case err := <-done:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := l.srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}
