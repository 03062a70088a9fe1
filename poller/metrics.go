package poller

// observeOwned sets the agents-owned gauge. Without metrics it does
// nothing: it walks the held leases.
func (p *Poller) observeOwned() {
	if p.cfg.Metrics == nil {
		return
	}
	if l := p.leases.Load(); l != nil {
		p.cfg.Metrics.SetAgentsOwned(l.count())
	}
}

// count returns how many agents' leases are held and not lost (len(owned())).
func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ls := range l.held {
		if !ls.isLost() {
			n++
		}
	}
	return n
}
