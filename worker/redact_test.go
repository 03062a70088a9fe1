package worker

import "testing"

func TestRedactGUID(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`{"command_id":"c-1","agent_id":101,"number":"1"}`, `{"command_id":"c-1","agent_id":101,"number":"1"}`},
		{`{ "number" : "1", "correlation_id":"my-guid-ref" }`, `{ "number" : "1", "correlation_id":"my-guid-ref" }`},
		{`{"number":"1","guid":"secret.AgentGateway0","agent_id":1.0e2}`, `{"agent_id":1.0e2,"number":"1"}`},
		{`{"GUID":"s","Guid":"s","gu\u0069d":"s","guid":"a","guid":"b","x":[1, 2]}`, `{"x":[1,2]}`},
		{`{"guid":"secret"`, ``},
		{`["guid","secret"]`, ``},
		{`not json`, `not json`},
		{``, ``},
		{`null`, `null`},
	}
	for _, tt := range tests {
		if got := string(redactGUID([]byte(tt.in))); got != tt.want {
			t.Errorf("redactGUID(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
