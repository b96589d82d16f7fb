package openai

import "time"

// SetClock replaces the clock used to read HTTP-date Retry-After headers.
func SetClock(c *Client, now func() time.Time) { c.now = now }
