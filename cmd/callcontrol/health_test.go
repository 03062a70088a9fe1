package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/callcontrol/callcontrol/internal/health"
)

// A busy --health-listen address is refused naming the setting; "" is off.
func TestHealthListenSetting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := healthFlags{listen: ln.Addr().String()}
	if _, err := h.start(context.Background(), health.Readiness{}, nil); err == nil || !strings.Contains(err.Error(), "CALLCONTROL_HEALTH_LISTEN") {
		t.Fatalf("start on a busy address: %v, want an error naming CALLCONTROL_HEALTH_LISTEN", err)
	}
	off := healthFlags{}
	stop, err := off.start(context.Background(), health.Readiness{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop()
}
