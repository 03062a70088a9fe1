package jsondup

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	many := func(extra string) string { // an object past linearMax keys
		var b strings.Builder
		b.WriteString("{")
		for i := range 3 * linearMax {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	tests := []struct {
		name, data string
		fold       bool
		key        string // "" when no repeat
		depth      int
	}{
		{"none", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, true, "", 0},
		{"top level", `{"a":1,"b":2,"a":3}`, false, "a", 1},
		{"escaped", `{"number":1,"n\u0075mber":2}`, false, "number", 1},
		{"case differs, exact", `{"retcode":"1","RetCode":"0"}`, false, "", 0},
		{"case differs, folded", `{"retcode":"1","RetCode":"0"}`, true, "RetCode", 1},
		{"Kelvin sign folds to k", `{"k":1,"\u212a":2}`, true, "\u212a", 1},
		{"nested in array", `[1,{"x":[{"y":1,"y":2}]}]`, false, "y", 4},
		{"many keys, none", many(`"z":0`), true, "", 0},
		{"many keys, repeat", many(`"k3":0`), false, "k3", 1},
		{"many keys, folded repeat", many(`"K40":0`), true, "K40", 1},
		{"many keys, case only, exact", many(`"K40":0`), false, "", 0},
		{"scalar", `"a"`, false, "", 0},
	}
	for _, tt := range tests {
		err := Check([]byte(tt.data), Options{Fold: tt.fold})
		var e *Error
		switch {
		case tt.key == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.key != "" && (!errors.As(err, &e) || e.Key != tt.key || e.Depth != tt.depth):
			t.Errorf("%s: error %v, want key %q at depth %d", tt.name, err, tt.key, tt.depth)
		}
	}
}

// Skip leaves the values of the keys it names unchecked, at the top level
// only; the skipped keys themselves are still checked.
func TestCheckSkip(t *testing.T) {
	t.Parallel()
	skip := Options{Fold: true, Skip: func(k string) bool { return k == "result" }}
	for data, want := range map[string]bool{
		`{"result":{"a":1,"a":2},"event":{}}`:    false,
		`{"result":{},"event":{"a":1,"A":2}}`:    true,
		`{"result":{},"Result":{}}`:              true,
		`{"x":{"result":{"a":1,"a":2}}}`:         true,
		`{"result":[{"a":1,"a":2}],"retcode":0}`: false,
	} {
		var e *Error
		if got := errors.As(Check([]byte(data), skip), &e); got != want {
			t.Errorf("%s: repeat found %v, want %v", data, got, want)
		}
	}
}

func TestCheckMalformed(t *testing.T) {
	t.Parallel()
	for _, data := range []string{`{"a":1`, `{"a" 1}`, `{} {}`, ``, `{"a":1}x`} {
		var e *Error
		if err := Check([]byte(data), Options{}); err == nil || errors.As(err, &e) {
			t.Errorf("%q: error %v, want a syntax error", data, err)
		}
	}
}

// norm(a) == norm(b) exactly when strings.EqualFold(a, b).
func TestNormAgreesWithEqualFold(t *testing.T) {
	t.Parallel()
	s := scanner{o: Options{Fold: true}}
	words := []string{"k", "K", "\u212a", "s", "S", "\u017f", "ß", "ẞ", "σ", "Σ", "ς", "ǅ", "ǆ", "Ǆ", "a", "\ufffd", "Ω", "ω", "\u2126"}
	for _, a := range words {
		for _, b := range words {
			if got, want := s.norm(a) == s.norm(b), strings.EqualFold(a, b); got != want {
				t.Errorf("%q %q: norm equal %v, EqualFold %v", a, b, got, want)
			}
		}
	}
}

func BenchmarkCheckCommand(b *testing.B) {
	data := []byte(`{"command_id":"8c1d6f0e-5d7b-4f7e-9a53-0c4c1d7f2a11","agent_id":101,"number":"5550101","issued_at":"2026-11-25T10:00:00Z","ttl_ms":30000,"correlation_id":"crm-case-4711","requested_by":"crm"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
