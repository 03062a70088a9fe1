package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
)

// Validate's refusals are typed and name the field.
func TestListenConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   api.ListenConfig
		field string
	}{
		{api.ListenConfig{Addr: ":8443"}, "Addr"},
		{api.ListenConfig{Addr: "10.0.0.1:8443"}, "Addr"},
		{api.ListenConfig{Addr: "127.0.0.1:0", CertFile: "c.pem"}, "CertFile"},
		{api.ListenConfig{Addr: "127.0.0.1:0", ClientCAFile: "ca.pem"}, "ClientCAFile"},
	} {
		var le *api.ListenError
		if err := c.cfg.Validate(); !errors.As(err, &le) || le.Field != c.field {
			t.Errorf("%+v: %v, want a ListenError on %s", c.cfg, err, c.field)
		}
	}
	if err := (api.ListenConfig{Addr: ":8443"}).Validate(); !errors.Is(err, api.ErrPlainHTTP) {
		t.Errorf("plain off loopback: %v", err)
	}
	if err := (api.ListenConfig{Addr: "127.0.0.1:0"}).Validate(); err != nil {
		t.Errorf("plain on loopback: %v", err)
	}
}

// Serve serves until ctx ends, then shuts down cleanly.
func TestListenerServe(t *testing.T) {
	l, err := api.Listen(api.ListenConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- l.Serve(ctx, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	}()
	res, err := http.Get(l.URL())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTeapot {
		t.Fatalf("got %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// An event stream served by Listen over TLS (HTTP/2) outlives the
// server's WriteTimeout and idles between events without being reset.
func TestEventsOutliveWriteTimeout(t *testing.T) {
	e := newEnv(t, api.Config{EventWriteTimeout: 500 * time.Millisecond})
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	l, err := api.Listen(api.ListenConfig{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{JetStream: e.js, Tokens: tokenFile(t), EventWriteTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, srv) }()
	defer func() { cancel(); <-done }()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	hr, _ := http.NewRequestWithContext(ctx, "GET", l.URL()+"/v1/events?types=result", nil)
	hr.Header.Set("Authorization", "Bearer "+tokAll)
	res, err := client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Fatalf("%s %d, want HTTP/2 200", res.Proto, res.StatusCode)
	}
	s := &sseStream{events: make(chan sseEvent, 10), res: res, cancel: func() {}}
	go s.read()
	time.Sleep(2 * time.Second) // idle past the server's WriteTimeout and the per-write deadline
	e.publishResult("late", 101)
	if ids := commandIDs(t, s.next(t, 1)); ids[0] != "result:late" {
		t.Fatalf("got %v", ids)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}
