package gatewaysim

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveSim runs a Server of a new simulator with cfg until the test ends.
func serveSim(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(New(Config{PollHold: 100 * time.Millisecond}), ln, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return srv
}

// signInStatus signs agent 101 in through client and returns the HTTP
// status and the protocol used.
func signInStatus(t *testing.T, client *http.Client, base string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/agentgateway/resource/onlineagent/101",
		strings.NewReader(`{"password":"","phonenum":"4001"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Proto
}

// Over HTTPS the server's certificate verifies with RootCAs for the
// listener's address; HTTP1Only refuses HTTP/2.
func TestServerHTTPS(t *testing.T) {
	srv := serveSim(t, ServerConfig{HTTP1Only: true})
	if !strings.HasPrefix(srv.URL(), "https://127.0.0.1:") || srv.CertPEM() == nil || srv.RootCAs() == nil {
		t.Fatalf("URL %q, CertPEM %d bytes, RootCAs %v", srv.URL(), len(srv.CertPEM()), srv.RootCAs())
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srv.RootCAs(), MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	t.Cleanup(client.CloseIdleConnections)
	if code, proto := signInStatus(t, client, srv.URL()); code != http.StatusOK || proto != "HTTP/1.1" {
		t.Fatalf("sign-in: %d over %s, want 200 over HTTP/1.1", code, proto)
	}
}

// PlainHTTP serves http:// with no certificate; Close is idempotent.
func TestServerPlainHTTP(t *testing.T) {
	srv := serveSim(t, ServerConfig{PlainHTTP: true})
	if !strings.HasPrefix(srv.URL(), "http://") || srv.CertPEM() != nil || srv.RootCAs() != nil {
		t.Fatalf("URL %q, CertPEM %v", srv.URL(), srv.CertPEM())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	if code, _ := signInStatus(t, client, srv.URL()); code != http.StatusOK {
		t.Fatalf("sign-in: %d", code)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}
