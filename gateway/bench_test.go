package gateway

import (
	"context"
	"net/http"
	"testing"
)

// Per-command costs of the gateway client outside the network: building the
// disconnect request, checking a success reply, classifying an error. Run
// with make bench (allocations per operation).

func BenchmarkBuildDisconnectRequest(b *testing.B) {
	c, err := New(Config{BaseURL: "https://gw.example:8043"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const guid = "0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10.AgentGateway0"
	b.ReportAllocs()
	for b.Loop() {
		if err := checkAgentID("disconnect", 4711); err != nil {
			b.Fatal(err)
		}
		if err := checkNumber("disconnect", "13800001234"); err != nil {
			b.Fatal(err)
		}
		if err := checkGUID("disconnect", guid); err != nil {
			b.Fatal(err)
		}
		if _, err := c.newRequest(ctx, call{op: "disconnect", method: http.MethodPost,
			path: agentPath("voicecall", 4711) + "/disconnect/13800001234", guid: guid}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckSuccessReply(b *testing.B) {
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}}}
	data := []byte(`{"message":"success","retcode":"0","result":{}}`)
	secrets := []string{"0f8e3c1a-5d2b-4c71-9a0e-2b7d1c4e9f10.AgentGateway0", "13800001234"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := checkResponse("disconnect", resp, data, secrets); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	errs := []error{nil, &Error{Op: "disconnect", StatusCode: 200, RetCode: "000-003"},
		&Error{Op: "disconnect", StatusCode: 200, RetCode: "200-023"}, &Error{Op: "disconnect", StatusCode: 503}}
	b.ReportAllocs()
	for b.Loop() {
		for _, err := range errs {
			_ = Classify(err)
		}
	}
}
