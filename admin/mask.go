package admin

import (
	"strings"

	"github.com/callcontrol/callcontrol/events"
)

// Masker hides phone numbers in output meant for people, unless Reveal is
// set. The zero value masks.
type Masker struct {
	// Reveal prints numbers in full.
	Reveal bool
}

// Number returns n, masked unless revealed.
func (m Masker) Number(n string) string {
	if m.Reveal {
		return n
	}
	return events.MaskNumber(n)
}

// Text masks every occurrence of number n in s (gateway messages and
// reasons may echo it).
func (m Masker) Text(s, n string) string {
	if m.Reveal || n == "" {
		return s
	}
	return strings.ReplaceAll(s, n, events.MaskNumber(n))
}
