// Package examples holds clients of Switchyard in other languages (the nats
// CLI, Python with nats-py, Node with nats.js) and the test that runs the
// nats CLI example against a real server and worker. It has no Go API.
//
// Nothing outside examples/ may import it.
package examples
