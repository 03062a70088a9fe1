package bench

import "testing"

// The call check's ranges run in segments whose positions average alike
// (a steady drift of the machine's load weighs on each alike), 2×rounds
// of each, and a new worker process wherever checked and unchecked
// alternate.
func TestBenchScopeSegments(t *testing.T) {
	for _, rounds := range []int{1, 2, 3} {
		seq, proc, procs := scopeSegments(rounds)
		var sum, count [scopeKinds]int
		for i, k := range seq {
			sum[k] += i
			count[k]++
			if i > 0 && (proc[i] != proc[i-1]) != ((k == scopeSkip) != (seq[i-1] == scopeSkip)) {
				t.Errorf("rounds %d: segment %d (%v) on process %d after %d", rounds, i, k, proc[i], proc[i-1])
			}
		}
		for k := range scopeKinds {
			if count[k] != 2*rounds || sum[k]*count[0] != sum[0]*count[k] {
				t.Errorf("rounds %d: range %d: %d segments at mean position %d/%d, want %d at range 0's", rounds, k, count[k], sum[k], count[k], 2*rounds)
			}
		}
		if procs != 2*rounds+1 || proc[len(proc)-1] != procs-1 {
			t.Errorf("rounds %d: %d worker processes, want %d", rounds, procs, 2*rounds+1)
		}
		if a := scopeAgentsFrom(101, 10, 4, rounds); len(a.all()) != scopeAgentCount(10, 4, rounds) || len(a.Warm) != procs {
			t.Errorf("rounds %d: %d agents laid out, want %d", rounds, len(a.all()), scopeAgentCount(10, 4, rounds))
		}
	}
}
