package config

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestEnvErrorsSpeakTheUsersTerms pins each environment error: the variable
// and its value named, what the value should look like, one line each, and
// a misspelt SWITCHYARD_ variable answered with the one meant.
func TestEnvErrorsSpeakTheUsersTerms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SWITCHYARD_ACK_WAIT": "30"}, "config: SWITCHYARD_ACK_WAIT=30: needs a unit, for example 30s"},
		{map[string]string{"SWITCHYARD_MAX_JOB_TIME": "ten minutes"}, "config: SWITCHYARD_MAX_JOB_TIME=ten minutes: want a duration such as 30s, 5m or 1h30m"},
		{map[string]string{"SWITCHYARD_CONCURRENCY": "many"}, "config: SWITCHYARD_CONCURRENCY=many: want a whole number"},
		{map[string]string{"SWITCHYARD_DURABLE_EVENTS": "yes please"}, "config: SWITCHYARD_DURABLE_EVENTS=yes please: want true or false"},
		{map[string]string{"SWITCHYARD_CONCURENCY": "8"}, "config: SWITCHYARD_CONCURENCY is not a Switchyard variable; did you mean SWITCHYARD_CONCURRENCY?"},
		{map[string]string{"SWITCHYARD_GROUP": "demo"}, "config: SWITCHYARD_GROUP is not a Switchyard variable; did you mean SWITCHYARD_GROUPS?"},
		{map[string]string{"LOG_LEVEL": "loud"}, `config: LOG_LEVEL: "loud" is not debug, info, warn or error`},
		{map[string]string{"SWITCHYARD_CONCURRENCY": "0", "SWITCHYARD_CONFG": "x.yaml"},
			"config: SWITCHYARD_CONFG is not a Switchyard variable; did you mean SWITCHYARD_CONFIG?\nconfig: SWITCHYARD_CONCURRENCY: 0 must be at least 1"},
	} {
		_, err := loadEnv(tc.env)
		require.EqualError(t, err, tc.want, "%v", tc.env)
	}
	// Variables of other commands, and ones far from every name, are not
	// the worker's business.
	_, err := loadEnv(map[string]string{"SWITCHYARD_TENANT": "acme", "SWITCHYARD_GATEWAY_WHATEVER": "x"})
	require.NoError(t, err)
}

// TestNATSOptionsPing: the ping settings reach the connection options, with
// defaults far below nats.go's 2 minutes, and bad values are refused.
func TestNATSOptionsPing(t *testing.T) {
	t.Parallel()
	apply := func(e Env) nats.Options {
		opts, err := e.NATSOptions("test")
		require.NoError(t, err)
		o := nats.GetDefaultOptions()
		for _, opt := range opts {
			require.NoError(t, opt(&o))
		}
		return o
	}
	e, err := loadEnv(map[string]string{})
	require.NoError(t, err)
	o := apply(e)
	require.Equal(t, 5*time.Second, o.PingInterval)
	require.Equal(t, 3, o.MaxPingsOut)
	require.Equal(t, 20*time.Second, o.FlusherTimeout, "a blocked write is bounded like a silent read")
	require.True(t, o.ReconnectOnFlusherError, "a write that timed out reconnects rather than drop what was buffered")
	require.NotNil(t, o.CustomDialer, "the dialer that sets TCP_USER_TIMEOUT")
	require.Equal(t, 27*time.Second, NATSSilentBound(o.PingInterval, o.MaxPingsOut), "a ping interval, four of them unacknowledged, a dial")

	e, err = loadEnv(map[string]string{"NATS_PING_INTERVAL": "750ms", "NATS_MAX_PINGS_OUT": "1"})
	require.NoError(t, err)
	o = apply(e)
	require.Equal(t, 750*time.Millisecond, o.PingInterval)
	require.Equal(t, 1, o.MaxPingsOut)
	require.Equal(t, 1500*time.Millisecond, o.FlusherTimeout)

	_, err = loadEnv(map[string]string{"NATS_PING_INTERVAL": "10ms"})
	require.EqualError(t, err, "config: NATS_PING_INTERVAL: 10ms must be at least 100ms")
	_, err = loadEnv(map[string]string{"NATS_MAX_PINGS_OUT": "0"})
	require.EqualError(t, err, "config: NATS_MAX_PINGS_OUT: 0 must be at least 1")
}
