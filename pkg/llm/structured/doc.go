// Package structured turns a model's free-text answer into validated JSON for
// requests whose response_format is json_object or json_schema.
//
// The worker calls it after the router returns an answer:
//
//	sch, err := structured.Compile(format.Schema) // cached by the schema's hash
//	if err != nil { ... }                         // *SchemaError: invalid_request
//	value, raw, violations, err := sch.ValidateText(answer)
//	if err != nil || len(violations) > 0 {
//		req.Messages = append(req.Messages, structured.ReaskMessages(answer, violations, err)...)
//		// ... call the model again, up to validation_retries times
//	}
//
// While an answer streams, [ParsePartial] gives the best-effort object so far
// (for `partial` events) and a [Throttle] decides how often to send it.
// [WithInstruction] adds a "respond only with JSON matching this schema"
// system prompt for providers without native structured output.
//
// Schemas come from requesters, so compiling one is guarded: see [Limits].
// No remote or file $ref is ever loaded; only the JSON Schema meta-schemas,
// which are embedded in the validator library, resolve by URL.
//
// The package is provider-neutral: it imports pkg/llm at most, and must never
// import NATS, pkg/bus or pkg/policy.
package structured
