package events

// MaskNumber hides all but the last 4 digits of a phone number, for logs:
// "13800001234" becomes "*******1234". Numbers of 4 digits or fewer are fully
// masked.
func MaskNumber(n string) string {
	keep := 4
	if len(n) <= keep {
		keep = 0
	}
	b := make([]byte, len(n))
	for i := range b {
		if i < len(n)-keep {
			b[i] = '*'
		} else {
			b[i] = n[i]
		}
	}
	return string(b)
}
