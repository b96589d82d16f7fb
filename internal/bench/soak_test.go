package bench

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// soakRun makes samples every minute for an hour; grow adds to the worker's
// RSS per minute, on top of a steady 60 MiB with some noise.
func soakRun(grow float64) []soakSample {
	var out []soakSample
	for m := range 61 {
		noise := float64((m*7919)%11) - 5
		s := soakSample{
			At:        time.Duration(m) * time.Minute,
			WorkerRSS: (60 + noise + grow*float64(m)) * (1 << 20), NATSRSS: 90 << 20,
			Heap: (20 + noise/2) * (1 << 20), Goroutines: 140 + noise,
			ResultsBytes: 50 << 20, Results: 100000,
		}
		if m < 15 { // the streams fill up to their retention first
			s.ResultsBytes, s.Results = float64(m)*(50<<20)/15, float64(m)*100000/15
		}
		out = append(out, s)
	}
	return out
}

// TestSoakPlateau: the plateau check passes series that levelled off after
// Settle (the streams' fill-up before it does not count), and fails one
// that kept growing.
func TestSoakPlateau(t *testing.T) {
	t.Parallel()
	cfg := SoakConfig{}.withDefaults()
	lines, ok := plateau(soakRun(0), cfg)
	require.True(t, ok, strings.Join(lines, "\n"))
	require.Len(t, lines, len(soakSeries))

	lines, ok = plateau(soakRun(0.2), cfg) // +12 MiB/h on 60: 20%/h
	require.False(t, ok)
	require.Contains(t, strings.Join(lines, "\n"), "FAIL worker RSS")

	_, ok = plateau(soakRun(0)[:10], cfg)
	require.False(t, ok, "ten minutes are too few samples to tell")
}

func TestSoakPlot(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "soak.png")
	require.NoError(t, plotSoak(path, soakRun(0.1), SoakConfig{}.withDefaults()))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 800)
}
