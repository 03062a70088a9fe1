package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws one status line on a terminal: the scenario, a bar and a
// count. On anything else it prints a line per phase.
type progress struct {
	w     io.Writer
	tty   bool
	label string
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// set shows label with done of total (total 0: no bar).
func (p *progress) set(label string, done, total int) {
	if !p.tty {
		if label != p.label {
			fmt.Fprintf(p.w, "bench: %s\n", label)
			p.label = label
		}
		return
	}
	if label == p.label && done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.label, p.last, p.drawn = label, time.Now(), true
	const width = 30
	bar := strings.Repeat(" ", width)
	count := ""
	if total > 0 {
		n := min(width, done*width/total)
		bar = strings.Repeat("=", n) + strings.Repeat(" ", width-n)
		count = fmt.Sprintf(" %d/%d", done, total)
	}
	fmt.Fprintf(p.w, "\r\033[K%-34s [%s]%s", label, bar, count)
}

// finish ends the status line.
func (p *progress) finish() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
	p.label = ""
}
