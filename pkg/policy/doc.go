// Package policy turns one request for a model group into calls to that
// group's deployments: routing, retries, circuit breakers, timeouts and
// fallback chains, composed with failsafe-go. A request with tools or images
// goes only to deployments whose model takes them (see DeploymentOptions
// and CodeMissingCapability).
//
// It sees providers only through pkg/llm and must never import NATS or
// pkg/bus: a library user can take pkg/policy and pkg/llm alone to get the
// router without a queue.
package policy
