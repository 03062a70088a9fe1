package bench

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// The table of a report is the one its run printed: docs/bench/results.json
// holds both, the measurements and the rows they gave, and
// docs/bench/results.md and chart.svg what it wrote.
func TestReportTableOfResults(t *testing.T) {
	b, err := os.ReadFile("../../docs/bench/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	want := rep.Rows
	rep.finish()
	if !reflect.DeepEqual(rep.Rows, want) {
		for i := range max(len(want), len(rep.Rows)) {
			if i >= len(want) || i >= len(rep.Rows) || !reflect.DeepEqual(rep.Rows[i], want[i]) {
				t.Errorf("row %d differs", i)
			}
		}
	}
	md, err := os.ReadFile("../../docs/bench/results.md")
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Markdown(); got != string(md) {
		t.Errorf("Markdown() =\n%s\nwant docs/bench/results.md:\n%s", got, md)
	}
	svg, err := os.ReadFile("../../docs/bench/chart.svg")
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.SVG(); got != string(svg) {
		t.Errorf("SVG() differs from docs/bench/chart.svg:\n%s", got)
	}
}
