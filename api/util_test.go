package api_test

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func newMsg(subject string, data []byte, h map[string]string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range h {
		m.Header.Set(k, v)
	}
	return m
}
