// Publish one chat job to Switchyard with nats.js and stream its answer.
//
//   npm install
//   NATS_URL=nats://127.0.0.1:4222 node job.mjs "Tell me about switchyards"
import { connect, headers } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { randomUUID } from "node:crypto";

const prompt = process.argv[2] ?? "Tell me about switchyards";
const group = process.env.GROUP ?? "demo";
const job = process.env.JOB ?? `node-${randomUUID()}`;

const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
const js = jetstream(nc);

// Subscribe to the reply subjects *before* publishing: events, then one result.
const sub = nc.subscribe(`llm.res.${job}.>`);

const h = headers();
h.set("Nats-Msg-Id", job); // the job id: a re-publish within the dedupe window is a no-op
const body = { messages: [{ role: "user", content: prompt }], metadata: { from: "node" } };
await js.publish(`llm.req.${group}`, JSON.stringify(body), { headers: h }); // JSON in, JSON out

// What a raw subscriber sees (docs/wire.md): a redelivered job's events come
// with a higher attempt and start with restart; events of an older attempt,
// and an (attempt, seq) already seen, are dropped; the first result is the
// job's, and a repeat of it (after a stream leader change) is never read
// because we stop at the first.
let status = "error";
let attempt = 0;
const seen = new Set();
for await (const m of sub) {
  const data = m.json();
  if (data.id !== job) continue; // someone else's message on a reply prefix we share
  if (m.subject.endsWith(".events")) {
    const key = `${data.attempt}.${data.seq}`;
    if (data.attempt < attempt || seen.has(key)) continue; // a stale attempt, or a repeat
    seen.add(key);
    if (data.attempt > attempt || data.type === "restart") {
      if (attempt) process.stdout.write("\n[restart]\n"); // a new attempt: discard the text so far
      attempt = data.attempt;
    }
    if (data.type === "chunk") process.stdout.write(data.delta);
    continue;
  }
  status = data.status;
  console.log();
  if (status === "ok") console.log(`ok: ${JSON.stringify(data.usage)} in ${data.timings.total_ms} ms`);
  else console.error(`error ${data.error.code}: ${data.error.message}`);
  break;
}
sub.unsubscribe(); // later repeats of the result are never read
await nc.drain();
process.exit(status === "ok" ? 0 : 1);
