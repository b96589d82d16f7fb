// Package spell finds what a user probably meant: the known name closest to
// a misspelt flag, subcommand, configuration key or environment variable,
// for "did you mean" hints. It imports nothing of Switchyard.
package spell

import (
	"strings"

	"github.com/hbollon/go-edlib"
)

// Closest returns the candidate nearest to word, and false when none is near
// enough to be a plausible misspelling. Distance is the optimal string
// alignment distance (a swap of two neighbours is one edit), compared
// case-insensitively, and near enough is at most 1 edit when either word
// has 4 letters or fewer, 2 up to 8 letters, 3 beyond; a word of 4 letters
// or more that begins a candidate (a truncated name) is near too. Ties go to
// the earlier candidate.
func Closest(word string, candidates []string) (string, bool) {
	w := strings.ToLower(word)
	best, bestDist := "", -1
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := edlib.OSADamerauLevenshteinDistance(w, lc)
		if d > limit(w, lc) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist >= 0 {
		return best, true
	}
	for _, c := range candidates {
		if len(w) >= 4 && strings.HasPrefix(strings.ToLower(c), w) {
			return c, true
		}
	}
	return "", false
}

func limit(a, b string) int {
	switch n := min(len(a), len(b)); {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	}
	return 3
}
