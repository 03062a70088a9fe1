package gatewaysim

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// BenchmarkDisconnect measures disconnects spread over 10,000 agents,
// handled in-process (no network).
func BenchmarkDisconnect(b *testing.B) {
	const agents = 10000
	s := New(Config{})
	defer s.Close()
	guids := make([]string, agents)
	for i := range agents {
		guids[i], _ = s.SignIn(101 + i)
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1)) % agents
			r := httptest.NewRequest(http.MethodPost, agentPath("/voicecall/%d/disconnect/5550100", 101+i), nil)
			r.Header.Set("Guid", guids[i])
			s.ServeHTTP(httptest.NewRecorder(), r)
		}
	})
}
