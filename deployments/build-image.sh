#!/usr/bin/env bash
# build-image.sh builds Switchyard's container images FROM scratch, with no
# registry: static binaries are compiled on this machine into a temporary
# build context, which docker build then packs.
#
#   deployments/build-image.sh            # both images
#   deployments/build-image.sh worker     # switchyard/worker:dev only
#   deployments/build-image.sh nats       # switchyard/nats:dev only
#
# Environment:
#   WORKER_IMAGE  tag of the worker image   (default switchyard/worker:dev)
#   NATS_IMAGE    tag of the nats image     (default switchyard/nats:dev)
#   GOARCH        target architecture       (default: go env GOARCH)
#   CA_CERTS      CA bundle baked in        (default /etc/ssl/certs/ca-certificates.crt)
#   GO, DOCKER    the go and docker commands
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
GO=${GO:-go}
DOCKER=${DOCKER:-docker}
WORKER_IMAGE=${WORKER_IMAGE:-switchyard/worker:dev}
NATS_IMAGE=${NATS_IMAGE:-switchyard/nats:dev}
CA_CERTS=${CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
what=${1:-all}

case "$what" in
all | worker | nats) ;;
*)
	echo "usage: $0 [all|worker|nats]" >&2
	exit 2
	;;
esac

ctx=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# Static, reproducible binaries: no cgo (scratch has no libc), no local paths.
export CGO_ENABLED=0 GOOS=linux GOARCH=${GOARCH:-$("$GO" env GOARCH)}
# gobuild OUT PKG compiles PKG to $ctx/OUT.
gobuild() {
	echo "go build $2 -> $1" >&2
	(cd "$root" && "$GO" build -trimpath -ldflags='-s -w' -o "$ctx/$1" "$2")
}

# One context per image, so neither sends the other's binaries to the daemon.
mkdir -p "$ctx/worker/data" "$ctx/nats/data"
if [[ $what == all || $what == worker ]]; then
	if [[ ! -r $CA_CERTS ]]; then
		echo "$0: CA bundle $CA_CERTS not readable (set CA_CERTS)" >&2
		exit 1
	fi
	gobuild worker/bin/worker ./cmd/worker
	gobuild worker/bin/submit ./cmd/submit
	cp "$CA_CERTS" "$ctx/worker/ca-certificates.crt"
	"$DOCKER" build -f "$here/Dockerfile" -t "$WORKER_IMAGE" "$ctx/worker"
	echo "built $WORKER_IMAGE" >&2
fi
if [[ $what == all || $what == nats ]]; then
	# The version pinned in go.mod, so the cluster runs the server the tests ran.
	gobuild nats/nats-server github.com/nats-io/nats-server/v2
	"$DOCKER" build -f "$here/nats/Dockerfile" -t "$NATS_IMAGE" "$ctx/nats"
	echo "built $NATS_IMAGE" >&2
fi
