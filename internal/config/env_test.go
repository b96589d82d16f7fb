package config

import (
	"testing"

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
