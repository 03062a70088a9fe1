package worker

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/callcontrol/callcontrol/events"
	"github.com/callcontrol/callcontrol/gateway"
	"github.com/callcontrol/callcontrol/gateway/gatewaysim"
	"github.com/nats-io/nats.go/jetstream"
)

// hostile is gateway text that tries every trick against a header line.
const hostile = "no\r\nNats-Msg-Id: forged\n\x00X: 1\u0085Y: 2\u2028Z\u2029\u202edesrever\u200b\xff\xfe end"

func TestOneLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 200) // 400 bytes: a cut at 256 would split one
	tests := []struct{ in, want string }{
		{"plain reason", "plain reason"},
		{"a\r\nb", "a  b"},
		{"a\x00b\x7fc\x1bd", "a b c d"},
		{"a\u0085b\u2028c\u2029d", "a b c d"},
		{"a\u202eb\u200bc\ufeffd", "a b c d"},
		{"a\xffb", "a\ufffdb"},
		{long, strings.Repeat("é", 128)},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	checkHeaderValue(t, "oneLine", oneLine(hostile+long))
}

// FuzzOneLine checks that oneLine always returns one line of valid UTF-8
// without control, separator or format characters, at most 256 bytes, and
// keeps text that is already safe.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{hostile, "retcode 200-204: the user is not in the last call", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s)
		checkHeaderValue(t, "oneLine", got)
		if len(s) <= 256 && utf8.ValidString(s) && strings.IndexFunc(s, unsafeRune) < 0 && got != s {
			t.Fatalf("oneLine changed the safe %q into %q", s, got)
		}
	})
}

// unsafeRune reports a rune that must not appear in a header value.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Cf)
}

// checkHeaderValue fails when v could break or smuggle a header line.
func checkHeaderValue(t testing.TB, name, v string) {
	t.Helper()
	if len(v) > 256 || !utf8.ValidString(v) || strings.IndexFunc(v, unsafeRune) >= 0 {
		t.Fatalf("header %s = %q: not one line of at most 256 bytes of safe UTF-8", name, v)
	}
}

// hostileGateway refuses every disconnect with a permanent error whose
// text (unlike a real gateway.Client's, which cleans it) carries hostile.
type hostileGateway struct{}

func (hostileGateway) Disconnect(context.Context, int, string, string) error {
	return &gateway.Error{Op: "disconnect", StatusCode: 200, RetCode: "200-204", Message: hostile}
}

// CallInfo puts every agent on one call that every number is a party of,
// so that the disconnect is sent (and refused).
func (hostileGateway) CallInfo(_ context.Context, _ int, _ string) (gateway.CallInfo, error) {
	return gateway.CallInfo{CallID: "hostile-1", Parties: []string{"5550100"}, Began: time.Unix(1, 0)}, nil
}

var (
	resultMsgIDRE = regexp.MustCompile(`^(result|dlq)-[A-Za-z0-9_-]{1,64}$`)
	commandIDRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// No field of a command (command_id, correlation_id, requested_by,
// number, agent_id, its Nats-Msg-Id) and no gateway text can add, split or
// forge a header of a result or dead-letter message: every header is one
// of the known ones, once, and a safe single line.
func TestHeadersCannotBeInjected(t *testing.T) {
	b := setup(t, testConfig(), gatewaysim.Config{})
	b.signIn([]int{101}, nil)
	b.startWorker(hostileGateway{})
	payloads := []struct{ data, msgID string }{
		{`{"command_id":"ok-1","agent_id":101,"number":"5550100","correlation_id":"case-1","requested_by":"crm"}`, "ok-1"},
		{`{"command_id":"c-2\r\nNats-Msg-Id: forged","agent_id":101,"number":"5550100"}`, "m/../2?x#y"},
		{`{"command_id":"c-3","agent_id":101,"number":"5550100","correlation_id":"a\r\nCallcontrol-Status: accepted"}`, "c-3"},
		{`{"command_id":"c-4","agent_id":101,"number":"5550100","requested_by":"crm\u2028ops\u0000"}`, "c-4"},
		{`{"command_id":"c-5","agent_id":101,"number":"12/../34?x#y"}`, "c-5"},
		{`{"command_id":"c-6","agent_id":101,"number":"\uff15\uff15\uff15"}`, "c-6"},
		{`{"command_id":"c\u20107","agent_id":101,"number":"5550100"}`, "c\u20107"},
		{`{"command_id":"c-8","agent_id":"101\r\nX: 1","number":"5550100"}`, "c-8"},
		{`{"command_id":"c-9","agent_id":101,"number":"5550100","guid":"g\r\nX: 1"}`, "c-9"},
		{"\xff\xfe{", ""},
	}
	for _, p := range payloads {
		b.publishRaw([]byte(p.data), p.msgID)
	}
	b.waitResults(len(payloads), 30*time.Second)
	for _, stream := range []string{events.StreamResults, events.StreamDeadLetter} {
		for _, m := range streamMsgs(t, b.js, stream) {
			checkHeaders(t, m)
		}
	}
}

// checkHeaders checks every header of a result or dead-letter message.
func checkHeaders(t *testing.T, m *jetstream.RawStreamMsg) {
	t.Helper()
	allowed := map[string]*regexp.Regexp{
		events.HeaderMsgID:         resultMsgIDRE,
		events.HeaderCommandID:     commandIDRE,
		events.HeaderStatus:        regexp.MustCompile(`^(accepted|rejected|failed|expired)$`),
		events.HeaderCorrelationID: regexp.MustCompile(`^[!-~]{1,128}$`),
		events.HeaderReason:        nil, // free text, checked by checkHeaderValue
	}
	for name, values := range m.Header {
		re, ok := allowed[name]
		if !ok || len(values) != 1 {
			t.Errorf("%s #%d: header %q = %q", m.Subject, m.Sequence, name, values)
			continue
		}
		checkHeaderValue(t, name, values[0])
		if re != nil && !re.MatchString(values[0]) {
			t.Errorf("%s #%d: header %s = %q does not match %s", m.Subject, m.Sequence, name, values[0], re)
		}
	}
	if m.Subject == events.SubjectDeadLetter {
		return
	}
	var r events.Result
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("result %q: %v", m.Data, err)
	}
	if m.Subject != events.ResultSubject(r.Status) || m.Header.Get(events.HeaderCommandID) != r.CommandID {
		t.Errorf("result on %s with headers %q: %+v", m.Subject, m.Header, r)
	}
}

// streamMsgs returns every message stored in stream.
func streamMsgs(t testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}
