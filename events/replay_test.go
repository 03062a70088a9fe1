package events

import "testing"

func TestReplayMsgIDSuffix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"42", "-replay-42"},
		{"18446744073709551615", "-replay-18446744073709551615"},
		{"184467440737095516150", ""}, // longer than any uint64
		{"4x2", ""},
		{"-1", ""},
		{"1\r\nNats-Msg-Id: x", ""}, // nothing but digits reaches a header
	} {
		if got := ReplayMsgIDSuffix(tt.in); got != tt.want {
			t.Errorf("ReplayMsgIDSuffix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
