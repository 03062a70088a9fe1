package poller

import "testing"

// Rendezvous hashing spreads agents evenly, moves only the agents a new
// member wins when it joins, only a dead member's agents when it leaves,
// and is the same in every process and version.
func TestOwner(t *testing.T) {
	t.Parallel()
	three := []string{"r1", "r2", "r3"}
	four := []string{"r1", "r2", "r3", "r4"}
	two := []string{"r2", "r3"}
	count := map[string]int{}
	for a := 101; a < 10101; a++ {
		o3, o4, o2 := owner(a, three), owner(a, four), owner(a, two)
		count[o3]++
		if o4 != o3 && o4 != "r4" {
			t.Fatalf("agent %d moved from %s to %s when r4 joined", a, o3, o4)
		}
		if o3 != "r1" && o2 != o3 {
			t.Fatalf("agent %d moved from %s to %s when r1 left", a, o3, o2)
		}
	}
	for _, m := range three {
		if count[m] < 3000 || count[m] > 3667 {
			t.Errorf("%s owns %d of 10000 agents, want about a third", m, count[m])
		}
	}
	// Pinned values: replicas of different versions must agree.
	if w := weight("r1", 101); w != 0xd8075fa914849994 {
		t.Errorf("weight(r1, 101) = %#x: the hash changed, old and new replicas would disagree", w)
	}
	for a, want := range map[int]string{101: "r3", 102: "r1", 59999: "r3"} {
		if got := owner(a, []string{"r3", "r1", "r2"}); got != want {
			t.Errorf("owner(%d) = %s, want %s", a, got, want)
		}
	}
}
