// Package docs holds no code. Its tests keep the documents in this
// directory true: the JSON Schemas in schema/ validate the requests, events
// and results of a real run and list exactly the wire structs' fields,
// wire.md names every field, code, event and header, configuration.md every
// model-file key and environment variable with its default, and the README
// walks on a clean checkout with the binaries it describes.
package docs
