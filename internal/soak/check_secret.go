package soak

import (
	"fmt"
	"strings"
)

// secretScanner finds secrets in text, ASCII case-insensitively, in one
// pass over the text: every secret is at least MinSecretLen bytes long, so
// each text position is looked up by its next MinSecretLen bytes.
type secretScanner struct {
	secrets []string         // lower case
	orig    []int            // index of each in History.Secrets
	byHead  map[string][]int // first MinSecretLen bytes -> indexes into secrets
}

func newSecretScanner(secrets []string) *secretScanner {
	s := &secretScanner{byHead: map[string][]int{}}
	seen := map[string]bool{}
	for i, sec := range secrets {
		l := asciiLower(sec)
		if len(l) < MinSecretLen || seen[l] {
			continue
		}
		seen[l] = true
		s.byHead[l[:MinSecretLen]] = append(s.byHead[l[:MinSecretLen]], len(s.secrets))
		s.secrets = append(s.secrets, l)
		s.orig = append(s.orig, i)
	}
	return s
}

type secretMatch struct{ at, secret int }

// find returns the non-overlapping matches in text, leftmost first, the
// longest secret at each position.
func (s *secretScanner) find(text string) []secretMatch {
	if len(s.secrets) == 0 || len(text) < MinSecretLen {
		return nil
	}
	l := asciiLower(text)
	var out []secretMatch
	for i := 0; i+MinSecretLen <= len(l); {
		best := -1
		for _, k := range s.byHead[l[i:i+MinSecretLen]] {
			if strings.HasPrefix(l[i:], s.secrets[k]) && (best < 0 || len(s.secrets[k]) > len(s.secrets[best])) {
				best = k
			}
		}
		if best < 0 {
			i++
			continue
		}
		out = append(out, secretMatch{i, best})
		i += len(s.secrets[best])
	}
	return out
}

// redact replaces every secret in text by its name (see name).
func (s *secretScanner) redact(text string, ms []secretMatch) string {
	var b strings.Builder
	last := 0
	for _, m := range ms {
		b.WriteString(text[last:m.at])
		b.WriteString(s.name(m.secret))
		last = m.at + len(s.secrets[m.secret])
	}
	b.WriteString(text[last:])
	return b.String()
}

// name is how a report names secret k: by its index in History.Secrets,
// never by its value.
func (s *secretScanner) name(k int) string { return fmt.Sprintf("<Secrets[%d]>", s.orig[k]) }

// asciiLower lower-cases A-Z only, so byte offsets stay the same.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func (c *checker) checkNoSecret() {
	sc := newSecretScanner(c.h.Secrets)
	c.checked(InvariantNoSecret, len(sc.secrets))
	if len(sc.secrets) == 0 {
		return
	}
	type leak struct {
		count int
		first int
		text  string
	}
	for _, src := range []struct {
		name  string
		texts []string
	}{{"Logs", c.h.Logs}, {"Streams", c.h.Streams}, {"Metrics", c.h.Metrics}} {
		leaks := make([]*leak, len(sc.secrets))
		for i, t := range src.texts {
			ms := sc.find(t)
			for _, m := range ms {
				if leaks[m.secret] == nil {
					leaks[m.secret] = &leak{first: i, text: excerpt(sc.redact(t, ms), sc.name(m.secret))}
				}
			}
			counted := map[int]bool{}
			for _, m := range ms {
				if !counted[m.secret] {
					counted[m.secret] = true
					leaks[m.secret].count++
				}
			}
		}
		for k, l := range leaks {
			if l == nil {
				continue
			}
			c.violate(InvariantNoSecret, "", "Secrets[%d] (%d chars) appears in %d of %s, first %s[%d]: %q",
				sc.orig[k], len(sc.secrets[k]), l.count, src.name, src.name, l.first, l.text)
		}
	}
}

// excerpt returns up to 60 bytes of text either side of the first mark.
func excerpt(text, mark string) string {
	const side = 60
	i := strings.Index(text, mark)
	if i < 0 {
		i = 0
	}
	from, to := max(0, i-side), min(len(text), i+len(mark)+side)
	out := strings.ToValidUTF8(text[from:to], "")
	if from > 0 {
		out = "…" + out
	}
	if to < len(text) {
		out += "…"
	}
	return out
}
