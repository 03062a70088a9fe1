package events

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"testing"
)

// readmeJSON returns the ```json block of README.md that follows the line
// intro.
func readmeJSON(t *testing.T, intro string) []byte {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)" + regexp.QuoteMeta(intro) + "\\s*```json\\n(.*?)```")
	m := re.FindSubmatch(data)
	if m == nil {
		t.Fatalf("README.md has no json block after %q", intro)
	}
	return m[1]
}

// The README's example command is accepted as written, and its example
// result decodes into Result without unknown fields.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	cmd, err := DecodeDisconnect(readmeJSON(t, "A command:"))
	if err != nil {
		t.Fatalf("README command: %v", err)
	}
	if cmd.CallID == "" || cmd.TTL == 0 || cmd.CorrelationID == "" {
		t.Errorf("README command decodes as %+v: want call_id, ttl_ms and correlation_id", cmd)
	}
	dec := json.NewDecoder(bytes.NewReader(readmeJSON(t, "A result:")))
	dec.DisallowUnknownFields()
	var r Result
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("README result: %v", err)
	}
	if r.Status != StatusAccepted || r.CallID != cmd.CallID {
		t.Errorf("README result %+v: want accepted, scoped to the command's call", r)
	}
}
