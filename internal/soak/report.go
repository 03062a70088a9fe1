package soak

import (
	"fmt"
	"slices"
	"strings"
)

// MaxListed is how many violations Table lists.
const MaxListed = 50

// Table returns r as text: a summary line, a Markdown table of the
// invariants (invariant | checked | violations), then PASS or FAIL and up
// to MaxListed violations ("... N more" for the rest).
func (r Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak check, seed %d: %d commands, %d requests, %d faults; %d accepted result(s) pending confirmation at end\n\n",
		r.Seed, r.Commands, r.Requests, r.Faults, r.PendingAtEnd)
	counts := map[string]int{}
	for _, v := range r.Violations {
		counts[v.Invariant]++
	}
	names := Invariants()
	for inv := range r.Checked {
		if !slices.Contains(names, inv) {
			names = append(names, inv)
		}
	}
	for inv := range counts {
		if !slices.Contains(names, inv) {
			names = append(names, inv)
		}
	}
	slices.Sort(names[len(Invariants()):])
	b.WriteString("| invariant | checked | violations |\n|---|---:|---:|\n")
	for _, inv := range names {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", inv, r.Checked[inv], counts[inv])
	}
	if n := len(r.InWindow); n > 0 {
		fmt.Fprintf(&b, "\n%d release(s) in the window no call check closes (another call became the agent's last call, by beginning or by the end of the call after it, less than the call state's trust, plus twice a slow gateway's latency, before the request reached the gateway; not violations):\n", n)
		for i, v := range r.InWindow {
			if i == MaxListed {
				fmt.Fprintf(&b, "... %d more\n", n-MaxListed)
				break
			}
			fmt.Fprintf(&b, "- %s %s: %s\n", v.Invariant, v.CommandID, oneLine(v.Detail))
		}
	}
	if r.OK() {
		b.WriteString("\nPASS: no violations\n")
		return b.String()
	}
	fmt.Fprintf(&b, "\nFAIL: %d violation(s)\n", len(r.Violations))
	for i, v := range r.Violations {
		if i == MaxListed {
			fmt.Fprintf(&b, "... %d more\n", len(r.Violations)-MaxListed)
			break
		}
		if v.CommandID == "" {
			fmt.Fprintf(&b, "- %s: %s\n", v.Invariant, oneLine(v.Detail))
		} else {
			fmt.Fprintf(&b, "- %s %s: %s\n", v.Invariant, v.CommandID, oneLine(v.Detail))
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s) }
