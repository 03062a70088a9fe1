package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// The embedded server's failures are told in terms of the flags, as
// before natsembed: --data-dir with the holder's PID, --nats-listen.
func TestStartNATSErrorsNameTheFlags(t *testing.T) {
	dir := t.TempDir()
	ns, err := startNATS("127.0.0.1:0", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	for _, c := range []struct{ listen, dir, want string }{
		{"127.0.0.1:0", dir, "--data-dir (CALLCONTROL_DATA_DIR): data directory " + dir +
			" is in use by another callcontrol process (pid " + strconv.Itoa(os.Getpid()) + "); stop it or use another directory"},
		{"127.0.0.1", t.TempDir(), "--nats-listen (CALLCONTROL_NATS_LISTEN): address 127.0.0.1: missing port in address"},
		{"127.0.0.1:x", t.TempDir(), "--nats-listen (CALLCONTROL_NATS_LISTEN): port: strconv.Atoi: parsing \"x\": invalid syntax"},
	} {
		_, err := startNATS(c.listen, c.dir, false)
		if err == nil || err.Error() != c.want {
			t.Errorf("startNATS(%q) = %v,\nwant %s", c.listen, err, c.want)
		}
	}
	if _, err := startNATS("127.0.0.1:0", dir+"/x\x00", false); err == nil || !strings.HasPrefix(err.Error(), "--data-dir (CALLCONTROL_DATA_DIR): ") {
		t.Errorf("startNATS on a bad directory = %v, want an error naming --data-dir", err)
	}
}
