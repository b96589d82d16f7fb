package openai

import "time"

// SetClock replaces the clock used to read HTTP-date Retry-After headers.
func SetClock(c *Client, now func() time.Time) { c.now = now }

// CloseIdleConnections closes the idle connections of the default transport
// shared by Clients built without an HTTPClient.
func CloseIdleConnections() { defaultHTTPClient().CloseIdleConnections() }
