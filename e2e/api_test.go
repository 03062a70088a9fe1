//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/events"
)

// apiAgents is the size of the API scenario: one HTTP client per agent.
const apiAgents = 150

// apiToken is the bearer token of the scenario's HTTP clients.
const apiToken = "e2e-api-token"

// TestAPIWorkerSIGKILL: the api role runs as a container beside NATS, the
// simulator and two workers; an HTTP client per agent POSTs its
// disconnect with an Idempotency-Key and Prefer: wait, and one worker is
// killed with SIGKILL while disconnects are in flight at a gateway of
// 1 s latency. Each client retries as an HTTP client would (the same key
// after a transport error, a 409 or a 5xx; GET of the Location after a
// 202), half of them giving up on each request after 2 s, and gets
// exactly one result, the one stored; no command is executed twice (the
// simulator's releases) and one command is stored per key.
func TestAPIWorkerSIGKILL(t *testing.T) {
	started := time.Now()
	ctx := context.Background()
	c := newCluster(t, clusterOpts{workers: 2, simArgs: []string{"--sim-no-poll-signout", "0", "--sim-latency", "1s"}})
	c.agents(firstAgent, apiAgents)
	base, client := c.startAPI(ctx)
	cmds := commands("api", firstAgent, apiAgents, ttlConst(3*time.Minute))

	// Every other client gives up on a request after 2 s (a proxy's
	// timeout, say) and retries with the same key: 409 while the first
	// request holds it, then its stored response.
	impatient := &http.Client{Transport: client.Transport, Timeout: 2 * time.Second}
	got := make([]apiOutcome, len(cmds))
	var wg sync.WaitGroup
	for i := range cmds {
		cl := client
		if i%2 == 1 {
			cl = impatient
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = postUntilResult(ctx, cl, base, cmds[i], 3*time.Minute)
		}()
	}
	var inflight int
	if !waitFor(90*time.Second, func() bool {
		inflight = inProgress(c.disconnects())
		return c.col.done(cmds) >= 10 && inflight >= 10
	}) {
		t.Fatalf("no disconnects in flight: %d results, %d in progress", c.col.done(cmds), inflight)
	}
	killedAt := time.Now()
	c.kill(c.workers[0])
	t.Logf("SIGKILL worker1 with %d disconnects in flight at the gateway and %d of %d results in", inflight, c.col.done(cmds), len(cmds))
	wg.Wait()
	c.waitDone(cmds, time.Minute)
	time.Sleep(2 * time.Second) // anything late would show now

	r := c.check("api: HTTP clients (Idempotency-Key, Prefer: wait) while a worker is SIGKILLed", cmds, killedAt)
	var waited, followed, retried int
	c.col.mu.Lock()
	for i, cmd := range cmds {
		o := got[i]
		waited, followed, retried = waited+o.waited, followed+o.followed, retried+o.retries
		stored := c.col.results[cmd.CommandID]
		switch {
		case o.err != nil:
			t.Errorf("%s: the HTTP client got no result: %v", cmd.CommandID, o.err)
		case len(stored) != 1:
			t.Errorf("%s: %d results stored", cmd.CommandID, len(stored))
		case o.result.CommandID != cmd.CommandID || o.result.Status != stored[0].Status || o.result.Reason != stored[0].Reason:
			t.Errorf("%s: the HTTP client got %s %q, the stored result is %s %q", cmd.CommandID, o.result.Status, o.result.Reason, stored[0].Status, stored[0].Reason)
		case o.result.RequestedBy != "crm":
			t.Errorf("%s: requested_by %q, want the token's name", cmd.CommandID, o.result.RequestedBy)
		}
	}
	c.col.mu.Unlock()
	// The same key again: the first response, not a second command.
	for _, cmd := range cmds[:10] {
		if code, _, err := postOnce(ctx, client, base, cmd, 0); err != nil || (code != http.StatusOK && code != http.StatusAccepted) {
			t.Errorf("%s: POST again with its key: %d %v", cmd.CommandID, code, err)
		}
	}
	if n := commandsStored(t, c); n != uint64(len(cmds)) {
		t.Errorf("%d commands stored for %d keys", n, len(cmds))
	}
	r.Sizes = fmt.Sprintf("%d HTTP clients (half with a 2 s request timeout), gateway latency 1 s, 2 workers, %d disconnects in flight at the kill; "+
		"%d results by Prefer: wait, %d by GET of the Location, %d retries with the same key", apiAgents, inflight, waited, followed, retried)
	record(t, r, started)
}

// startAPI starts `callcontrol api` on the network with a token file and
// a TLS certificate for localhost, and returns its URL through the mapped
// port and a client that trusts the certificate.
func (c *cluster) startAPI(ctx context.Context) (string, *http.Client) {
	t := c.t
	certPEM, keyPEM, pool := selfSigned(t)
	tokens := fmt.Sprintf(`{"tokens":[{"name":"crm","sha256":%q,"scopes":["commands:write","commands:read"]}]}`, api.HashToken(apiToken))
	file := func(path string, data []byte) testcontainers.ContainerFile {
		return testcontainers.ContainerFile{Reader: bytes.NewReader(data), ContainerFilePath: path, FileMode: 0o644}
	}
	ctr, err := testcontainers.Run(ctx, appImage,
		network.WithNetwork([]string{"api"}, c.nw),
		testcontainers.WithLabels(e2eLabels),
		testcontainers.WithExposedPorts("8443/tcp", "8080/tcp"),
		testcontainers.WithFiles(file("/api/tokens.json", []byte(tokens)), file("/api/tls.crt", certPEM), file("/api/tls.key", keyPEM)),
		testcontainers.WithCmd("api", "--nats-url", natsURLs, "--replicas", "3", "--api-listen", "0.0.0.0:8443",
			"--api-tokens", "/api/tokens.json", "--api-tls-cert", "/api/tls.crt", "--api-tls-key", "/api/tls.key",
			"--api-rate", "1000", "--api-burst", "1000", "--log-level", "warn"),
		testcontainers.WithWaitStrategy(readyz()),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("api: %v", err)
	}
	ep, err := ctr.PortEndpoint(ctx, "8443/tcp", "https")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: apiAgents}
	return ep, &http.Client{Transport: tr, Timeout: 40 * time.Second}
}

// selfSigned is a certificate for localhost and 127.0.0.1, its key, and a
// pool that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost", "api"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

// apiOutcome is what one HTTP client ended with.
type apiOutcome struct {
	result   events.Result
	err      error
	waited   int // 1: the result came with a 200 to the POST (Prefer: wait)
	followed int // 1: it came from GET of the Location after a 202
	retries  int // requests repeated after a transport error, 409 or 5xx
}

// postUntilResult is an HTTP client's loop: POST the command with its key
// and Prefer: wait=20 until the API answers 200 (the result) or 202, then
// GET the Location until the command has a result. Transport errors, 409
// (the same key in flight) and 5xx are retried with the same key.
func postUntilResult(ctx context.Context, client *http.Client, base string, cmd command, d time.Duration) apiOutcome {
	var o apiOutcome
	end := time.Now().Add(d)
	var href string
	for href == "" {
		if time.Now().After(end) {
			o.err = fmt.Errorf("no 200 or 202 within %v", d)
			return o
		}
		code, body, err := postOnce(ctx, client, base, cmd, 20)
		if err != nil || code == http.StatusConflict || code >= 500 {
			o.retries++
			time.Sleep(500 * time.Millisecond)
			continue
		}
		var acc api.Accepted
		if jerr := json.Unmarshal(body, &acc); jerr != nil || (code != http.StatusOK && code != http.StatusAccepted) {
			o.err = fmt.Errorf("POST: %d %s", code, body)
			return o
		}
		if code == http.StatusOK && acc.Result != nil {
			o.result, o.waited = *acc.Result, 1
			return o
		}
		href = acc.Href
	}
	for !time.Now().After(end) {
		code, body, err := do(ctx, client, "GET", base+href, nil, nil)
		var st api.Command
		if err == nil && code == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Result != nil {
			o.result, o.followed = *st.Result, 1
			return o
		}
		if err != nil || code >= 500 {
			o.retries++
		}
		time.Sleep(time.Second)
	}
	o.err = fmt.Errorf("no result at %s within %v", href, d)
	return o
}

// postOnce POSTs cmd with its command_id as the Idempotency-Key and, when
// wait > 0, Prefer: wait=<wait>.
func postOnce(ctx context.Context, client *http.Client, base string, cmd command, wait int) (int, []byte, error) {
	body, _ := json.Marshal(cmd.DisconnectCommand)
	hdr := map[string]string{"Content-Type": "application/json", "Idempotency-Key": `"` + cmd.CommandID + `"`}
	if wait > 0 {
		hdr["Prefer"] = fmt.Sprintf("wait=%d", wait)
	}
	return do(ctx, client, "POST", base+"/v1/disconnects", body, hdr)
}

func do(ctx context.Context, client *http.Client, method, url string, body []byte, hdr map[string]string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// commandsStored is the messages in CALLCONTROL_COMMANDS.
func commandsStored(t *testing.T, c *cluster) uint64 {
	var n uint64
	retry(context.Background(), t, "commands stream info", func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, events.StreamCommands)
		if err != nil {
			return err
		}
		n = s.CachedInfo().State.Msgs
		return nil
	})
	return n
}
