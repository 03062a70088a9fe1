package metrics

import "sync"

// maxRetcodes bounds the distinct retcode label values of one process.
const maxRetcodes = 32

// labelSet admits at most max distinct retcode label values; the rest
// become "other".
type labelSet struct {
	max  int
	mu   sync.RWMutex
	seen map[string]bool
}

func newLabelSet(max int) *labelSet {
	return &labelSet{max: max, seen: make(map[string]bool)}
}

// label returns rc itself when it is "", "0" or "NNN-NNN" and within the
// bound, else "other".
func (s *labelSet) label(rc string) string {
	if rc == "" || rc == "0" {
		return rc
	}
	if !retcodeForm(rc) {
		return "other"
	}
	s.mu.RLock()
	ok := s.seen[rc]
	s.mu.RUnlock()
	if ok {
		return rc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[rc] {
		return rc
	}
	if len(s.seen) >= s.max {
		return "other"
	}
	s.seen[rc] = true
	return rc
}

// retcodeForm reports whether rc looks like a gateway retcode: "NNN-NNN".
func retcodeForm(rc string) bool {
	if len(rc) != 7 || rc[3] != '-' {
		return false
	}
	for i, c := range []byte(rc) {
		if i != 3 && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
