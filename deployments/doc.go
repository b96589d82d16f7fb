// Package deployments holds Switchyard's packaging and operations files: the
// FROM-scratch Dockerfiles and build-image.sh, docker-compose.yml (a 3-node
// NATS JetStream cluster and three workers), the Kubernetes manifests with
// a KEDA ScaledObject (k8s/), the Grafana dashboard (grafana/) and the NATS
// node and permission configs (nats/). See README.md.
//
// It has no code of its own: its tests check that those files are valid and
// agree with the code (environment variables, stream and consumer names,
// metric names, subject permissions). Nothing may import it.
package deployments
