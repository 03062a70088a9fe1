package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/api"
	"github.com/callcontrol/callcontrol/internal/testenv"
)

// Every dev of these tests serves its HTTP API on a free port, not on
// dev's fixed default (which `make run` and other test runs on the same
// machine may hold); a test that wants another address says so on the
// command line, which wins.
func init() { os.Setenv("CALLCONTROL_API_LISTEN", "127.0.0.1:0") }

// The README's HTTP example, run by bash as written beside dev (its
// address moved to dev's random port, its data dir where the example
// looks for the token), prints the accepted result and confirmation.
func TestReadmeHTTPExample(t *testing.T) {
	block := readmeBlock(t, "curl -sS http://"+devAPIListen+"/v1/disconnects")
	tmp := t.TempDir()
	_, out, _ := startDevIn(t, filepath.Join(tmp, "callcontrol-dev"), "dev")
	m := regexp.MustCompile(`HTTP API http://([0-9.:]+): bearer token (\S+) \(also in (\S+); token file (\S+)\)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the banner does not name the HTTP API:\n%s", out.String())
	}
	if want := filepath.Join(tmp, "callcontrol-dev", devTokenText); m[3] != want {
		t.Fatalf("token in %s, want %s", m[3], want)
	}
	if _, err := api.LoadTokens(m[4]); err != nil {
		t.Fatalf("dev's token file: %v", err)
	}
	sh := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(block, devAPIListen, m[1]))
	sh.Dir = t.TempDir() // any directory
	sh.Env = append(os.Environ(), "TMPDIR="+tmp)
	got, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("README HTTP example: %v\n%s", err, got)
	}
	var acc api.Accepted
	if err := json.Unmarshal(got, &acc); err != nil || acc.Result == nil || acc.Result.Status != "accepted" || acc.Result.RequestedBy != "dev" {
		t.Fatalf("README HTTP example printed:\n%s", got)
	}
	if acc.Confirmation == nil || acc.Confirmation.Status != "confirmed" {
		t.Fatalf("no confirmation within the wait:\n%s", got)
	}
	if strings.Contains(out.String(), "bearer token") && strings.Count(out.String(), m[2]) != 1 {
		t.Fatalf("the token is printed more than once")
	}
}

// startDevIn is startDev with the data directory dir.
func startDevIn(t *testing.T, dir string, args ...string) (string, *testenv.SyncBuffer, *testenv.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append(args, "--nats-listen", "127.0.0.1:0", "--data-dir", dir), &out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	ready := regexp.MustCompile(`NATS (nats://[0-9.:]+)`)
	var url string
	testenv.WaitFor(t, 30*time.Second, "dev to report ready", func() bool {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return url, &out, &logs
}

// The api role refuses what cannot be served safely, naming the flag.
func TestAPISettingsRefused(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"a","sha256":"`+api.HashToken("x")+`","scopes":["commands:read"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"api", "--api-listen", "127.0.0.1:0"}, "--api-tokens (CALLCONTROL_API_TOKENS)"},
		{[]string{"api", "--api-tokens", tokens, "--api-listen", ":8443"}, "--api-listen (CALLCONTROL_API_LISTEN)"},
		{[]string{"api", "--api-tokens", tokens, "--api-listen", "10.0.0.1:8443"}, "plain HTTP is refused"},
		{[]string{"api", "--api-tokens", tokens, "--api-tls-cert", "c.pem"}, "--api-tls-cert (CALLCONTROL_API_TLS_CERT)"},
		{[]string{"api", "--api-tokens", tokens, "--api-listen", "127.0.0.1:0", "--api-tls-cert", "none.pem", "--api-tls-key", "none.pem"}, "--api-tls-cert (CALLCONTROL_API_TLS_CERT)"},
		{[]string{"dev", "--api-listen", "0.0.0.0:8422"}, "--api-listen (CALLCONTROL_API_LISTEN)"},
		{[]string{"api", "--api-tokens", tokens, "--api-listen", "127.0.0.1:0", "--api-rate", "0"}, "--api-rate (CALLCONTROL_API_RATE)"},
		{[]string{"api", "--api-tokens", tokens, "--api-listen", "127.0.0.1:0", "--api-client-ca", "ca.pem"}, "--api-client-ca (CALLCONTROL_API_CLIENT_CA)"},
		{[]string{"api", "--api-tokens", filepath.Join(t.TempDir(), "none.json"), "--api-listen", "127.0.0.1:0"}, "--api-tokens"},
	} {
		err := run(context.Background(), c.args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want it to name %s", c.args, err, c.want)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, ":1": false, "10.0.0.1:1": false} {
		if api.Loopback(addr) != want {
			t.Errorf("Loopback(%s) != %v", addr, want)
		}
	}
}

// The api role serves over TLS with mutual TLS: a client without a
// certificate is refused at the handshake, one with it gets the API.
func TestAPIRoleMutualTLS(t *testing.T) {
	natsURL, _ := testenv.Provisioned(t, topologyAll())
	dir := t.TempDir()
	ca := newTestCA(t, dir)
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens":[{"name":"crm","sha256":"`+api.HashToken("tok")+`","scopes":["events:read"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs testenv.SyncBuffer
	stderr = &logs
	t.Cleanup(func() { stderr = os.Stderr })
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"api", "--nats-url", natsURL, "--api-tokens", tokens, "--api-listen", "127.0.0.1:0",
			"--api-tls-cert", ca.serverCert, "--api-tls-key", ca.serverKey, "--api-client-ca", ca.caFile}, &strings.Builder{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api: %v", err)
		}
	})
	var url string
	re := regexp.MustCompile(`"url":"(https://[0-9.:]+)"`)
	testenv.WaitFor(t, 20*time.Second, "the api to serve", func() bool {
		if m := re.FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	get := func(certs []tls.Certificate) (*http.Response, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool, Certificates: certs}}}
		req, _ := http.NewRequest("GET", url+"/v1/agents", nil)
		req.Header.Set("Authorization", "Bearer tok")
		return c.Do(req)
	}
	if res, err := get(nil); err == nil {
		res.Body.Close()
		t.Fatalf("a client without a certificate got %d", res.StatusCode)
	}
	res, err := get([]tls.Certificate{ca.client})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("got %d", res.StatusCode)
	}
	testenv.WaitFor(t, 5*time.Second, "the request log line", func() bool {
		return strings.Contains(logs.String(), `"route":"GET /v1/agents"`) && strings.Contains(logs.String(), `"token":"crm"`)
	})
}
