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

    status = "error"
    async for msg in sub.messages:
        data = json.loads(msg.data)
        if msg.subject.endswith(".events"):
            if data["type"] == "chunk":
                print(data["delta"], end="", flush=True)
            elif data["type"] == "restart":  # a new attempt: discard the text so far
                print("\n[restart]")
            continue
        status = data["status"]
        print()
        if status == "ok":
            print(f"ok: {data.get('usage')} in {data['timings']['total_ms']} ms")
        else:
            print(f"error {data['error']['code']}: {data['error']['message']}", file=sys.stderr)
        break
    await nc.drain()
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
