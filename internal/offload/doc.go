// Package offload sends work that can wait through the vendors' batch APIs
// (llm.Batcher: OpenAI's Batch API, Anthropic's Message Batches, Gemini's
// batch mode) at their batch price, and hands each line's answer back as
// the job's ordinary result.
//
// Nothing is lost on a crash; all of an offload's state is in NATS KV, one
// bucket per tenant namespace (bus.Subjects.OffloadBucket), so that one
// tenant's jobs never share a bucket, or a vendor batch, with another's:
//
//   - a line (l.<group>.<job>) is a job waiting for a batch: its request
//     message as it was stored, written by the worker before it acks the
//     message (Engine.Add);
//   - a batch (b.<ref>) lists the jobs it holds, written before the vendor
//     is asked (state submitting), then with the vendor's id (submitted). A
//     crash between the vendor's reply and that write is recovered with
//     llm.Batcher.FindBatch by ref, so a batch is never sent twice;
//   - a batch claims each of its lines (the line's batch, written with
//     compare-and-set on the revision it was read at) after its record is
//     written and before the vendor is asked, and sends only the lines it
//     claimed: of two workers that both believe they hold the lease (one's
//     lapsed while it was slow) and collected the same lines, one sends
//     them. The last gate before the vendor is the record's own
//     compare-and-set (its attempt, written at the revision the sender
//     read): who loses it does not call the vendor, and an attempt younger
//     than two leases is left to its worker (a send is cut off after one);
//   - the lease (lease) names the one worker that works the bucket: it
//     collects lines into batches (after the group's vendor_batch.after, or
//     at the vendor's limits), polls the batches in flight and answers their
//     lines. It is taken and renewed with compare-and-set on the key's
//     revision; a worker that dies loses it after Config.Lease and another
//     takes over from what the bucket says.
//
// A line stays in the bucket until its answer is published (Host.Answer)
// or it is sent back to the live path (Host.Live), so a worker that dies
// while answering a batch leaves the rest for the next one; the results
// stream's deduplication by job id keeps it to one result per job.
//
// The package knows nothing of the worker: the worker is its Host. It must
// not import internal/worker.
package offload
