package testenv

import (
	"context"
	"crypto/x509"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
)

// Gateway is a gateway simulator served over real HTTPS on a loopback
// port for the rest of a test.
type Gateway struct {
	// Sim is the simulator, for the test to set up agents, calls and
	// faults and to read what it was asked.
	Sim *gatewaysim.Sim
	// URL is its base URL, https://127.0.0.1:port.
	URL string
	// Roots holds its self-signed certificate, for gateway.Config.RootCAs.
	Roots *x509.CertPool
	// CAFile is a PEM file of that certificate, for --gateway-ca.
	CAFile string
}

// StartGateway serves a simulator with cfg over HTTPS until t ends.
func StartGateway(t testing.TB, cfg gatewaysim.Config) *Gateway {
	t.Helper()
	return ServeGateway(t, gatewaysim.New(cfg), gatewaysim.ServerConfig{})
}

// ServeGateway serves sim with srvCfg (over HTTPS unless srvCfg.PlainHTTP;
// HTTP/1 only, as net/http/httptest does) until t ends, when the server
// and sim are closed. Errors the HTTP server would log (clients closing a
// connection mid-handshake) are discarded unless srvCfg.ErrorLog is set.
func ServeGateway(t testing.TB, sim *gatewaysim.Sim, srvCfg gatewaysim.ServerConfig) *Gateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCfg.HTTP1Only = true
	if srvCfg.ErrorLog == nil {
		srvCfg.ErrorLog = log.New(io.Discard, "", 0)
	}
	srv, err := gatewaysim.NewServer(sim, ln, srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway simulator: %v", err)
		}
	})
	g := &Gateway{Sim: sim, URL: srv.URL(), Roots: srv.RootCAs()}
	if srv.CertPEM() != nil {
		g.CAFile = filepath.Join(t.TempDir(), "gateway-ca.pem")
		if err := os.WriteFile(g.CAFile, srv.CertPEM(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return g
}
