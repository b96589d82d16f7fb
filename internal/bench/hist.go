package bench

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records durations with microsecond resolution and three
// significant digits, from 1µs to 10 minutes. It is safe for concurrent use.
type Histogram struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// histMax is the largest duration recorded; longer ones are clamped to it so
// that a stuck job still counts.
const histMax = 10 * time.Minute

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, histMax.Microseconds(), 3)}
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), histMax.Microseconds())
	h.mu.Lock()
	_ = h.h.RecordValue(us) // cannot fail: us is within the range
	h.mu.Unlock()
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h.TotalCount()
}

// Quantile returns the duration at quantile q in [0, 1] (0.99 is p99), or 0
// when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// Max returns the largest recorded duration.
func (h *Histogram) Max() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Merge adds o's recorded durations to h.
func (h *Histogram) Merge(o *Histogram) {
	if h == o {
		return
	}
	o.mu.Lock()
	c := hdrhistogram.Import(o.h.Export())
	o.mu.Unlock()
	h.mu.Lock()
	h.h.Merge(c)
	h.mu.Unlock()
}
