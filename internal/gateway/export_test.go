package gateway

import "time"

// SetWebhookRetryBase shortens the first webhook retry's delay in tests.
func SetWebhookRetryBase(c *Config, d time.Duration) { c.webhookRetryBase = d }
