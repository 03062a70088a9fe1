package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// startAuthNATS runs an in-process nats-server with JetStream whose
// authentication and TLS configure sets, and returns its client URL.
func startAuthNATS(t *testing.T, configure func(*server.Options)) string {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(), JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 1 << 30}
	configure(opts)
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns.ClientURL()
}

// writeFile writes content to name in dir (mode 0600) and returns its path.
func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testPKI is a CA made for one test, a server certificate for the DNS name
// "nats.test" only (so a client must set --nats-tls-server-name to reach
// it on 127.0.0.1) and a client certificate, all as PEM files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callcontrol test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage, dns []string) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), DNSNames: dns,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			writeFile(t, dir, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	}
	p := testPKI{ca: writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))}
	p.serverCert, p.serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth, []string{"nats.test"})
	p.clientCert, p.clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth, nil)
	return p
}

// mutualTLS configures a server for TLS with the PKI's server certificate
// and a required, verified client certificate.
func (p testPKI) mutualTLS(t *testing.T) func(*server.Options) {
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: p.serverCert, KeyFile: p.serverKey, CaFile: p.ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) { o.TLS, o.TLSVerify, o.TLSConfig, o.TLSTimeout = true, true, tc, 2 }
}

// operatorSetup builds decentralized JWT authentication: an operator, a
// system account and the JetStream-enabled account CALLCONTROL, preloaded
// into a memory resolver. It returns the server configuration, a .creds
// file of a user of CALLCONTROL and one of a user of an account the
// operator never signed.
func operatorSetup(t *testing.T) (configure func(*server.Options), creds, foreignCreds string) {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	op, err := nkeys.CreateOperator()
	must(err)
	opPub, err := op.PublicKey()
	must(err)
	account := func(name string, signer nkeys.KeyPair, js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, err := kp.PublicKey()
		must(err)
		ac := jwt.NewAccountClaims(pub)
		ac.Name = name
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		tok, err := ac.Encode(signer)
		must(err)
		return kp, pub, tok
	}
	_, sysPub, sysJWT := account("SYS", op, false)
	acc, accPub, accJWT := account("CALLCONTROL", op, true)
	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	must(err)
	opc, err := jwt.DecodeOperatorClaims(opJWT)
	must(err)
	resolver := &server.MemAccResolver{}
	must(resolver.Store(sysPub, sysJWT))
	must(resolver.Store(accPub, accJWT))

	userCreds := func(name string, acc nkeys.KeyPair) string {
		u, err := nkeys.CreateUser()
		must(err)
		pub, err := u.PublicKey()
		must(err)
		seed, err := u.Seed()
		must(err)
		uc := jwt.NewUserClaims(pub)
		uc.Name = name
		tok, err := uc.Encode(acc)
		must(err)
		b, err := jwt.FormatUserConfig(tok, seed)
		must(err)
		return writeFile(t, dir, name+".creds", b)
	}
	stranger, _, _ := account("STRANGER", op, true) // signed, but never given to the server
	configure = func(o *server.Options) {
		o.TrustedOperators, o.AccountResolver, o.SystemAccount = []*jwt.OperatorClaims{opc}, resolver, sysPub
	}
	return configure, userCreds("callcontrol", acc), userCreds("stranger", stranger)
}

// nkeyUser returns a fresh user NKey: its public key and a seed file.
func nkeyUser(t *testing.T, name string) (string, string) {
	t.Helper()
	u, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := u.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := u.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return pub, writeFile(t, t.TempDir(), name+".nk", append(seed, '\n'))
}
