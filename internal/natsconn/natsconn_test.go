package natsconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callcontrol/callcontrol/internal/testenv"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).logRejectedTLSConns"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).syncBlocks"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// Validate names both fields and wraps the rule; FieldName renames them.
func TestValidateRules(t *testing.T) {
	cases := []struct {
		cfg         Config
		field, also Field
		rule        error
	}{
		{Config{User: "u", Password: "p", PasswordFile: "f"}, FieldPassword, FieldPasswordFile, ErrPasswordTwice},
		{Config{Token: "t", TokenFile: "f"}, FieldToken, FieldTokenFile, ErrTokenTwice},
		{Config{User: "u"}, FieldUser, FieldPasswordFile, ErrNoPassword},
		{Config{Password: "p"}, FieldPassword, FieldUser, ErrNoUser},
		{Config{CertFile: "c"}, FieldCertFile, FieldKeyFile, ErrCertKeyPair},
		{Config{KeyFile: "k"}, FieldCertFile, FieldKeyFile, ErrCertKeyPair},
		{Config{Token: "t", CredsFile: "c"}, FieldToken, FieldCredsFile, ErrAuthConflict},
		{Config{URL: "nats://u:p@h:1", NKeyFile: "n"}, FieldURL, FieldNKeyFile, ErrAuthConflict},
	}
	for _, c := range cases {
		err := c.cfg.Validate()
		var fe *FieldError
		if !errors.Is(err, c.rule) || !errors.As(err, &fe) || fe.Field != c.field || fe.Other != c.also {
			t.Errorf("%+v: Validate = %v, want %s and %s: %v", c.cfg, err, c.field, c.also, c.rule)
			continue
		}
		want := fmt.Sprintf("invalid configuration: %s and %s: %v", c.field, c.also, c.rule)
		if err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
		c.cfg.FieldName = func(f Field) string { return "--x-" + string(f) }
		if got := c.cfg.Validate().Error(); !strings.Contains(got, "--x-"+string(c.field)+" and --x-"+string(c.also)) {
			t.Errorf("FieldName not used: %q", got)
		}
	}
	if err := (Config{URL: "nats://h:1", User: "u", PasswordFile: "f"}).Validate(); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}

// Options reads the files it names: a bad one is a *FieldError naming its
// field, never quoting the content.
func TestOptionsFiles(t *testing.T) {
	garbage := writeFile(t, "not-a-key-SECRETISH-0042\n")
	empty := writeFile(t, " \n")
	cases := []struct {
		cfg   Config
		field Field
		want  string
	}{
		{Config{CredsFile: garbage}, FieldCredsFile, "CredsFile: no valid user JWT found"},
		{Config{NKeyFile: garbage}, FieldNKeyFile, "NKeyFile: not a readable NKey user seed file"},
		{Config{CAFile: garbage}, FieldCAFile, "CAFile: nats: failed to parse root certificate"},
		{Config{CertFile: garbage, KeyFile: garbage}, FieldCertFile, "CertFile: nats: error loading client certificate"},
		{Config{User: "u", PasswordFile: filepath.Join(t.TempDir(), "missing")}, FieldPasswordFile, "PasswordFile: open "},
		{Config{TokenFile: empty}, FieldTokenFile, "TokenFile: " + empty + " is empty"},
	}
	for _, c := range cases {
		_, err := c.cfg.Options()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: Options = %v, want a FieldError for %s containing %q", c.cfg, err, c.field, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "SECRETISH") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
	if _, err := (Config{TokenFile: empty}).Options(); !errors.Is(err, ErrEmptyFile) {
		t.Errorf("empty token file: %v, want ErrEmptyFile", err)
	}
}

// Passwords and tokens, in URLs, values, files or Secrets, are masked.
func TestRedact(t *testing.T) {
	const secret = "S3cret-Value-9911"
	if got := RedactURLs("nats://a:" + secret + "@h:4222, tls://" + secret + "@h2:4222"); got != "nats://a:***@h:4222,tls://***@h2:4222" {
		t.Errorf("RedactURLs = %q", got)
	}
	if got := RedactURLs("nats://h:1,%zz"); got != "nats://h:1,(unparsable URL)" {
		t.Errorf("RedactURLs = %q", got)
	}
	file := writeFile(t, "from-file-77\n")
	c := Config{Password: "pw-1", Token: "tok-2", PasswordFile: file, Secrets: []string{"other-3"}}
	if got := c.Redact("pw-1 tok-2 from-file-77 other-3 plain"); got != "*** *** *** *** plain" {
		t.Errorf("Redact = %q", got)
	}
}

// Method describes the authentication and TLS without a secret.
func TestMethod(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "no authentication"},
		{Config{URL: "tls://h:1"}, "no authentication, TLS"},
		{Config{User: "u", Password: "secret"}, `user "u", password from Password`},
		{Config{User: "u", PasswordFile: "f", CAFile: "ca"}, `user "u", password from PasswordFile, TLS`},
		{Config{Token: "secret", CertFile: "c", KeyFile: "k"}, "token from Token, mutual TLS with CertFile"},
		{Config{TokenFile: "f"}, "token from TokenFile"},
		{Config{NKeyFile: "n"}, "NKey seed NKeyFile"},
		{Config{CredsFile: "c"}, "credentials CredsFile"},
		{Config{URL: "nats://u:secret@h:1"}, "user info in URL"},
	}
	for _, c := range cases {
		if got := c.cfg.Method(); got != c.want {
			t.Errorf("%+v: Method = %q, want %q", c.cfg, got, c.want)
		}
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Dial makes one attempt: a refused one is a *ConnectError naming the
// servers without their password.
func TestDial(t *testing.T) {
	url := testenv.JetStream(t)
	nc, js, err := Dial(Config{URL: url, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if js == nil || nc.Opts.Name != "test" || nc.Opts.MaxReconnect != -1 || nc.Opts.ReconnectWait != DefaultReconnectWait {
		t.Errorf("options not applied: %+v", nc.Opts)
	}
	_, _, err = Dial(Config{URL: fmt.Sprintf("nats://u:pw-S3cret@127.0.0.1:%d", freePort(t))})
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "connect to NATS nats://u:***@127.0.0.1:") ||
		!strings.Contains(err.Error(), "(user info in URL)") || strings.Contains(err.Error(), "pw-S3cret") {
		t.Errorf("Dial to nothing: %v", err)
	}
}

// Drain closes the connection after delivering what was published, on a
// connection that is already closed too.
func TestDrain(t *testing.T) {
	url := testenv.JetStream(t)
	sub, _, err := Dial(Config{URL: url, Name: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got, err := sub.SubscribeSync("drain.test")
	if err != nil || sub.Flush() != nil {
		t.Fatal(err)
	}
	nc, _, err := Dial(Config{URL: url, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("drain.test", []byte("x")); err != nil {
		t.Fatal(err)
	}
	Drain(nc, 5*time.Second)
	if !nc.IsClosed() {
		t.Fatal("Drain returned with the connection open")
	}
	if _, err := got.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("the message published before Drain: %v", err)
	}
	Drain(nc, time.Second) // closed already: returns at once
}

// Connect retries the first connection, logging each attempt, until the
// server comes up; it gives up after ConnectTimeout, at once on a refused
// credential, and when ctx ends.
func TestConnectRetries(t *testing.T) {
	port := freePort(t)
	cfg := Config{URL: fmt.Sprintf("nats://127.0.0.1:%d", port), FieldName: func(f Field) string { return "--" + string(f) }}
	var logs testenv.SyncBuffer
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		nc, _, err := Connect(context.Background(), cfg, zerolog.New(&logs))
		if err == nil {
			nc.Close()
		}
		done <- result{err}
	}()
	testenv.WaitFor(t, 10*time.Second, "a logged retry", func() bool { return strings.Contains(logs.String(), `"attempt":2`) })
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if r := <-done; r.err != nil {
		t.Fatalf("Connect: %v", r.err)
	}
	if !strings.Contains(logs.String(), `"message":"nats connected"`) || !strings.Contains(logs.String(), "nats not reachable, retrying") {
		t.Errorf("logs:\n%s", logs.String())
	}

	cfg.URL = fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	cfg.ConnectTimeout = 300 * time.Millisecond
	_, _, err = Connect(context.Background(), cfg, zerolog.Nop())
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.GaveUp != cfg.ConnectTimeout || !strings.HasSuffix(err.Error(), "(gave up after 300ms, --ConnectTimeout)") {
		t.Errorf("after ConnectTimeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg.ConnectTimeout = 0
	if _, _, err = Connect(ctx, cfg, zerolog.Nop()); !errors.As(err, &ce) || !ce.Stopped {
		t.Errorf("ctx ended: %v", err)
	}
}

// A refused credential is not retried.
func TestConnectRefusedForGood(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Authorization: "right"})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	start := time.Now()
	_, _, err = Connect(context.Background(), Config{URL: ns.ClientURL(), Token: "wrong-tok-5678"}, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "Authorization Violation") || strings.Contains(err.Error(), "wrong-tok-5678") {
		t.Fatalf("Connect with a wrong token: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a refused credential was retried for %v", time.Since(start))
	}
}
