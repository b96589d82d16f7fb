"""Publish one chat job to Switchyard with nats-py and stream its answer.

    pip install -r requirements.txt
    NATS_URL=nats://127.0.0.1:4222 python job.py "Tell me about switchyards"
"""

import asyncio
import json
import os
import sys
import uuid

import nats


async def main() -> int:
    prompt = sys.argv[1] if len(sys.argv) > 1 else "Tell me about switchyards"
    group = os.environ.get("GROUP", "demo")
    job = os.environ.get("JOB", f"py-{uuid.uuid4()}")
    nc = await nats.connect(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    js = nc.jetstream()

    # Subscribe to the reply subjects *before* publishing: events, then one result.
    sub = await nc.subscribe(f"llm.res.{job}.>")
    body = {"messages": [{"role": "user", "content": prompt}], "metadata": {"from": "python"}}
    # JSON in, JSON out; Nats-Msg-Id is the job id (a re-publish is a no-op).
    await js.publish(f"llm.req.{group}", json.dumps(body).encode(), headers={"Nats-Msg-Id": job})

    # What a raw subscriber sees (docs/wire.md): a redelivered job's events
    # come with a higher attempt and start with restart; events of an older
    # attempt, and an (attempt, seq) already seen, are dropped; the first
    # result is the job's, and a repeat of it (after a stream leader change)
    # is never read because we stop at the first.
    status, attempt, seen = "error", 0, set()
    async for msg in sub.messages:
        data = json.loads(msg.data)
        if data.get("id") != job:
            continue  # someone else's message on a reply prefix we share
        if msg.subject.endswith(".events"):
            key = (data["attempt"], data["seq"])
            if data["attempt"] < attempt or key in seen:
                continue  # a stale attempt, or a repeat
            seen.add(key)
            if data["attempt"] > attempt or data["type"] == "restart":
                if attempt:  # a new attempt: discard the text so far
                    print("\n[restart]")
                attempt = data["attempt"]
            if data["type"] == "chunk":
                print(data["delta"], end="", flush=True)
            continue
        status = data["status"]
        print()
        if status == "ok":
            print(f"ok: {data.get('usage')} in {data['timings']['total_ms']} ms")
        else:
            print(f"error {data['error']['code']}: {data['error']['message']}", file=sys.stderr)
        break
    await sub.unsubscribe()  # later repeats of the result are never read
    await nc.drain()
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
