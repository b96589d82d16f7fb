#!/bin/sh
# Publish one chat job to Switchyard with the nats CLI, print its token
# events as they stream, then its result.
#
#   NATS_URL=nats://127.0.0.1:4222 ./job.sh "Tell me about switchyards"
#
# Env: NATS_URL (default nats://127.0.0.1:4222), GROUP (default demo),
# JOB (job id, default cli-<time>-<pid>), NATS (the nats binary, default nats).
set -eu

PROMPT=${1:-"Tell me about switchyards"}
GROUP=${GROUP:-demo}
JOB=${JOB:-cli-$(date +%s)-$$}
NATS=${NATS:-nats}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}
export NATS_URL

# 1. Subscribe to the job's events before publishing (core NATS: what is
#    published before the subscription exists is not seen).
"$NATS" sub --raw "llm.res.$JOB.events" &
EVENTS=$!
trap 'kill $EVENTS 2>/dev/null || true' EXIT
sleep 1

# 2. Publish the job: a JSON body in OpenAI's chat shape, the job id in
#    Nats-Msg-Id (a re-publish within the dedupe window is a no-op). JSON in,
#    JSON out: the worker answers in the encoding it was asked in.
BODY=$(printf '{"messages":[{"role":"user","content":"%s"}],"metadata":{"from":"nats-cli"}}' "$PROMPT")
"$NATS" pub --jetstream -H "Nats-Msg-Id:$JOB" "llm.req.$GROUP" "$BODY" >/dev/null

# 3. Read the result from the LLM_RESULTS stream: it is there (24 h) whether
#    it arrived before this line runs or after, so no subscription race.
RESULT=$("$NATS" sub --raw --stream LLM_RESULTS --all --count 1 "llm.res.$JOB.result")

sleep 0.2 # let the last events print
echo
echo "result: $RESULT"
case $RESULT in
*'"status":"ok"'*) exit 0 ;;
*) exit 1 ;;
esac
