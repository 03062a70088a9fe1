package gatewaysim

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTLSWithGeneratedCert(t *testing.T) {
	certPEM, keyPEM, err := GenerateCert("gateway.example")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sim := New(Config{PollHold: 100 * time.Millisecond})
	srv := httptest.NewUnstartedServer(sim)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("bad PEM")
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	t.Cleanup(client.CloseIdleConnections)
	b := &bundle{t: t, sim: sim, srv: srv, client: client}
	guid := b.signIn(101) // verifies the chain and 127.0.0.1
	sim.StartCall(101, "5550100")
	sim.SetFaults(Faults{Rate: 1, Kinds: []Fault{FaultResetAfter}})
	if _, _, err := b.do(http.MethodPost, agentPath("/voicecall/101/disconnect/5550100"), guid, nil); err == nil {
		t.Fatal("reset_after over TLS: want a client error")
	}
	if sim.Executed() != 1 {
		t.Fatalf("Executed %d", sim.Executed())
	}

	untrusting := &http.Client{Timeout: 5 * time.Second}
	if _, err := untrusting.Get(srv.URL + "/simulator/stats"); err == nil {
		t.Fatal("a client without the certificate must not connect")
	}
}

func TestGenerateCertHosts(t *testing.T) {
	certPEM, _, err := GenerateCert("gw.local", "10.0.0.5", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"gw.local", "10.0.0.5", "localhost", "127.0.0.1", "::1"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: h, Roots: pool}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if len(cert.DNSNames) != 2 {
		t.Errorf("DNS names %v: duplicates?", cert.DNSNames)
	}
}
