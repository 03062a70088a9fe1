package gatewaysim

import (
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"time"
)

// Fault is a kind of failure injected into a disconnect request (after its
// Guid check passed).
type Fault string

// The fault kinds. Only the *_after kinds execute the disconnect.
const (
	// Fault5xx answers HTTP 503 with Retry-After: 0 and an HTML body.
	Fault5xx Fault = "5xx"
	// FaultReset closes the connection without a response.
	FaultReset Fault = "reset"
	// FaultTimeout holds the request until the client gives up or 30 s
	// pass, then closes the connection.
	FaultTimeout Fault = "timeout"
	// FaultRetCode answers HTTP 200 with a retcode from [Faults.RetCodes].
	FaultRetCode Fault = "retcode"
	// FaultResetAfter executes the disconnect, then closes the connection
	// without a response: the client cannot know the outcome.
	FaultResetAfter Fault = "reset_after"
	// FaultTimeoutAfter executes the disconnect, then holds like
	// FaultTimeout.
	FaultTimeoutAfter Fault = "timeout_after"
)

var allFaults = []Fault{Fault5xx, FaultReset, FaultTimeout, FaultRetCode, FaultResetAfter, FaultTimeoutAfter}

// Faults is a fault plan for disconnect requests, and with Queries for the
// call-data queries too. The zero value injects nothing. The timeout kinds end the request's in-flight window before they
// hold, like a lost response, so a client's retry is not an overlap.
type Faults struct {
	// Rate is the probability (0..1) that a disconnect request gets one
	// fault, chosen uniformly from Kinds.
	Rate float64 `json:"rate"`
	// Kinds defaults to {Fault5xx, FaultReset, FaultTimeout} when Rate > 0.
	Kinds []Fault `json:"kinds,omitempty"`
	// RetCodes are drawn from uniformly for FaultRetCode; default {"100-007"}.
	RetCodes []string `json:"retcodes,omitempty"`
	// Seed makes the draws deterministic when non-zero.
	Seed int64 `json:"seed,omitempty"`
	// Queries applies the plan to the call-data queries (callinfo,
	// callinfobycallid, holdlist) as well, after their Guid check; the
	// *_after kinds then act like their plain kinds. Default false:
	// disconnects only.
	Queries bool `json:"queries,omitempty"`
}

// Validate reports a rate outside 0..1 or an unknown kind.
func (f Faults) Validate() error {
	if f.Rate < 0 || f.Rate > 1 {
		return fmt.Errorf("gatewaysim: faults: rate %v outside 0..1", f.Rate)
	}
	for _, k := range f.Kinds {
		if !slices.Contains(allFaults, k) {
			return fmt.Errorf("gatewaysim: faults: unknown kind %q", k)
		}
	}
	return nil
}

// SetFaults replaces the fault plan. Unknown kinds never fire.
func (s *Sim) SetFaults(f Faults) { s.faults.set(f) }

// Faults returns the current fault plan with defaults applied.
func (s *Sim) Faults() Faults { return s.faults.get() }

type faultPlan struct {
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func (p *faultPlan) set(f Faults) {
	f.Kinds = slices.Clone(f.Kinds)
	f.RetCodes = slices.Clone(f.RetCodes)
	if f.Rate > 0 && len(f.Kinds) == 0 {
		f.Kinds = []Fault{Fault5xx, FaultReset, FaultTimeout}
	}
	if len(f.RetCodes) == 0 {
		f.RetCodes = []string{rcInternal}
	}
	seed := f.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.f = f
	p.rng = rand.New(rand.NewSource(seed))
}

func (p *faultPlan) get() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.f
	f.Kinds = slices.Clone(f.Kinds)
	f.RetCodes = slices.Clone(f.RetCodes)
	return f
}

// coversQueries reports whether the plan applies to call-data queries.
func (p *faultPlan) coversQueries() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.f.Queries
}

// roll draws the fault for one request: "" for none, and the retcode to
// answer for FaultRetCode.
func (p *faultPlan) roll() (Fault, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f.Rate <= 0 || len(p.f.Kinds) == 0 || p.rng.Float64() >= p.f.Rate {
		return "", ""
	}
	k := p.f.Kinds[p.rng.Intn(len(p.f.Kinds))]
	if !slices.Contains(allFaults, k) {
		return "", ""
	}
	if k != FaultRetCode {
		return k, ""
	}
	return k, p.f.RetCodes[p.rng.Intn(len(p.f.RetCodes))]
}
