package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

// workerGCPercent is the worker's default garbage-collection target: its
// live heap is small (a few MiB) and it allocates ~20 KiB per command, so
// at Go's default (100) it collects many times a second under load, and
// those collections are a large part of its tail latency. At 400 the
// publish->POST p99 of `callcontrol bench` fell to 0.77x for about twice the
// peak RSS (~85 MiB at 256 in flight); see README "Performance".
const workerGCPercent = 400

// gcFlag registers --gc-percent. apply sets it unless GOGC is in the
// environment, which always wins (the Go runtime has already applied it).
type gcFlag struct{ percent int }

func (g *gcFlag) register(s *settings, def int) {
	s.fs.IntVar(&g.percent, "gc-percent", def,
		"Go garbage-collection target (as GOGC; -1 turns collection off); ignored when GOGC is set")
}

func (g *gcFlag) apply() error {
	if g.percent < -1 || g.percent == 0 {
		return fmt.Errorf("invalid configuration: --gc-percent (%s): must be -1 or greater than zero, got %d", envName("gc-percent"), g.percent)
	}
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(g.percent)
	}
	return nil
}
