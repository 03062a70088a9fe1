package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// setupTLS starts an HTTPS test gateway, configured by tune before it
// starts, that answers every disconnect with success.
func setupTLS(t *testing.T, tune func(*tls.Config)) *bundle {
	t.Helper()
	b := &bundle{mux: http.NewServeMux()}
	b.mux.HandleFunc("POST /voicecall/101/disconnect/5550100", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, ok)
	})
	b.srv = httptest.NewUnstartedServer(b.handler())
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	b.srv.TLS = &tls.Config{}
	if tune != nil {
		tune(b.srv.TLS)
	}
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	return b
}

// serverPool returns a pool trusting the test server's certificate.
func serverPool(b *bundle) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(b.srv.Certificate())
	return pool
}

// writePEM writes blocks of the given type to a file in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLS(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, nil)
	caFile := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", b.srv.Certificate().Raw)
	tests := []struct {
		name   string
		cfg    func(*Config)
		wantOK bool
	}{
		{"RootCAs", func(c *Config) { c.RootCAs = serverPool(b) }, true},
		{"CAFile", func(c *Config) { c.CAFile = caFile }, true},
		{"CAFile added to RootCAs", func(c *Config) { c.RootCAs = x509.NewCertPool(); c.CAFile = caFile }, true},
		{"InsecureSkipVerify", func(c *Config) { c.InsecureSkipVerify = true }, true},
		{"system roots only", func(*Config) {}, false},
		{"empty RootCAs", func(c *Config) { c.RootCAs = x509.NewCertPool() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits := b.hits.Load()
			c := newClient(t, b.srv.URL, tt.cfg)
			err := c.Disconnect(context.Background(), testAgent, testNumber, testGUID)
			if tt.wantOK {
				if err != nil {
					t.Fatalf("Disconnect: %v", err)
				}
				return
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v, want a certificate verification error", err)
			}
			wantClass(t, err, ClassTransient)
			if b.hits.Load() != hits {
				t.Fatal("the request reached the server despite the failed verification")
			}
		})
	}
}

func TestTLS_RootCAsNotModified(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, nil)
	caFile := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", b.srv.Certificate().Raw)
	pool := x509.NewCertPool()
	newClient(t, b.srv.URL, func(c *Config) { c.RootCAs = pool; c.CAFile = caFile })
	if !pool.Equal(x509.NewCertPool()) {
		t.Fatal("New added CAFile certificates to the caller's RootCAs")
	}
}

func TestTLS_MinVersion12(t *testing.T) {
	t.Parallel()
	b := setupTLS(t, func(c *tls.Config) { c.MinVersion = tls.VersionTLS10; c.MaxVersion = tls.VersionTLS11 })
	c := newClient(t, b.srv.URL, func(c *Config) { c.RootCAs = serverPool(b) })
	err := c.Disconnect(context.Background(), testAgent, testNumber, testGUID)
	if err == nil {
		t.Fatal("TLS 1.1 server accepted, want a handshake failure")
	}
	wantClass(t, err, ClassTransient)
}

// TestTLS_ClientCertificate checks mutual TLS with CertFile and KeyFile.
func TestTLS_ClientCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "test CA")
	leaf, leafKey := newCert(t, ca, caKey, "callcontrol")
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca)
	b := setupTLS(t, func(c *tls.Config) { c.ClientAuth = tls.RequireAndVerifyClientCert; c.ClientCAs = clientCAs })
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writePEM(t, dir, "client.pem", "CERTIFICATE", leaf.Raw)
	keyFile := writePEM(t, dir, "client.key", "PRIVATE KEY", keyDER)

	c := newClient(t, b.srv.URL, func(c *Config) { c.RootCAs = serverPool(b); c.CertFile = certFile; c.KeyFile = keyFile })
	if err := c.Disconnect(context.Background(), testAgent, testNumber, testGUID); err != nil {
		t.Fatalf("with client certificate: %v", err)
	}
	c = newClient(t, b.srv.URL, func(c *Config) { c.RootCAs = serverPool(b) })
	if err := c.Disconnect(context.Background(), testAgent, testNumber, testGUID); err == nil {
		t.Fatal("without client certificate: want an error")
	}
}

// newCert returns a certificate and its key, self-signed when parent is
// nil (a CA), else a client certificate signed by parent.
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
