package integration

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"

	"github.com/switchyard/switchyard/internal/procgroup"
)

// Image tags of the locally built images. They are rebuilt once per run (the
// binaries may have changed) and kept, so that Docker reuses their layers.
const (
	natsImage    = "switchyard-test/nats:local"
	workerImage  = "switchyard-test/worker:local"
	gatewayImage = "switchyard-test/gateway:local"
)

// setupErr is why the images could not be built; every test that needs
// them fails with it, since a CI machine has Docker and a silent skip would
// hide a broken suite. The images are built by the first test that starts a
// fleet (images), so that the tests that need no Docker run at once.
var (
	setupErr  error
	setupOnce sync.Once
)

// images builds the images once per run and returns why it failed. The
// builds have no bound of their own: how long compiling nats-server and
// the binaries takes depends on the build cache and on what else runs on
// the machine, not on anything the suite checks. They get what the run has
// left (go test's -timeout, as t's deadline says; the Makefile gives the
// container suites 45 minutes), and die with the test process if it ends
// first (procgroup).
func images(t *testing.T) error {
	setupOnce.Do(func() {
		start := time.Now()
		ctx := context.Background()
		if d, ok := t.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d)
			defer cancel()
		}
		setupErr = buildImages(ctx)
		if setupErr == nil {
			fmt.Fprintf(os.Stderr, "integration: images built in %s\n", time.Since(start).Round(time.Millisecond))
		}
		if tags := os.Getenv("SWITCHYARD_WORKER_TAGS"); tags != "" {
			fmt.Fprintf(os.Stderr, "integration: THE WORKER IMAGE IS BUILT WITH -tags=%s\n", tags)
		}
	})
	return setupErr
}

// testHost is the address at which the test process reaches the
// containers' mapped ports.
var testHost = "127.0.0.1"

// sourceRoot is the module's root directory, which the images are built from.
var sourceRoot string

func TestMain(m *testing.M) {
	// No Ryuk: it would be pulled from a registry, which is unreachable. The
	// tests remove their containers and network with t.Cleanup instead.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// testcontainers guesses that a process with /.dockerenv reaches the
	// containers' mapped ports through the bridge gateway; on a machine
	// whose Docker engine is local they are on the loopback interface.
	// TESTCONTAINERS_HOST_OVERRIDE still wins when set (Docker in Docker).
	if h := os.Getenv("TESTCONTAINERS_HOST_OVERRIDE"); h != "" {
		testHost = h
	} else {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", testHost)
	}
	os.Exit(m.Run())
}

// gatewayDockerfile is the gateway's image: the static binary on an empty
// base, as deployments/Dockerfile does for the worker.
const gatewayDockerfile = `FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/gateway /gateway
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/gateway"]
`

// buildImages compiles nats-server and the worker as static binaries into a
// temporary build context and builds the two FROM-scratch images from it.
func buildImages(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "switchyard-integration-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	sourceRoot = root
	// The same images as deployments/: its Dockerfiles, and a build context
	// laid out as deployments/build-image.sh lays it out.
	builds := []struct{ out, pkg string }{
		{"nats-server", "github.com/nats-io/nats-server/v2"},
		{"bin/worker", "./cmd/worker"},
		{"bin/submit", "./cmd/submit"},
		{"bin/gateway", "./cmd/gateway"},
	}
	for _, b := range builds {
		var tags string
		if b.pkg == "./cmd/worker" {
			// Only make chaos-broken sets it: a worker broken on purpose,
			// which the randomized schedule's checker must catch.
			tags = os.Getenv("SWITCHYARD_WORKER_TAGS")
		}
		if err := goBuild(ctx, root, filepath.Join(dir, b.out), b.pkg, tags); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		ca = nil // the suite calls no TLS endpoint; an empty bundle is enough
	}
	files := map[string][]byte{"ca-certificates.crt": ca, "Dockerfile.gateway": []byte(gatewayDockerfile)}
	for name, src := range map[string]string{
		"Dockerfile.nats":   filepath.Join(root, "deployments", "nats", "Dockerfile"),
		"Dockerfile.worker": filepath.Join(root, "deployments", "Dockerfile"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		files[name] = b
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return err
		}
	}

	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker is required for the integration suite: %w", err)
	}
	defer cli.Close()
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return fmt.Errorf("docker is required for the integration suite: %w", err)
	}
	defer provider.Close()
	for _, img := range []struct{ dockerfile, tag string }{
		{"Dockerfile.nats", natsImage},
		{"Dockerfile.worker", workerImage},
		{"Dockerfile.gateway", gatewayImage},
	} {
		repo, tag := splitTag(img.tag)
		req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
			Context: dir, Dockerfile: img.dockerfile, Repo: repo, Tag: tag,
			KeepImage: true, BuildLogWriter: io.Discard,
		}}
		if _, err := provider.BuildImage(ctx, req); err != nil {
			return fmt.Errorf("build image %s: %w", img.tag, err)
		}
	}
	return nil
}

// goBuild builds a static binary. It tries twice: on this shared machine a
// concurrent build or cache trim now and then makes one fail with "could not
// import ... (open : no such file or directory)". The build dies with the
// test process (procgroup.Command).
func goBuild(ctx context.Context, root, out, pkg, tags string) error {
	var err error
	for range 2 {
		cmd := procgroup.Command(ctx, "go", "build", "-ldflags=-s -w", "-tags="+tags, "-o", out, pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		var output []byte
		if output, err = procgroup.Run(cmd.CombinedOutput); err == nil {
			return nil
		}
		err = fmt.Errorf("go build %s: %w\n%s", pkg, err, output)
	}
	return err
}

// statSources stats every Go source and module file of the repository. The
// images are built from sources this package does not import, so go test's
// result cache would not see them change; the files a test opens or stats
// are part of the cache key, so a change to the worker reruns the suite.
// It must run inside a test: go test logs file access only after m.Run
// starts.
func statSources(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum" {
			_, err := os.Stat(path)
			return err
		}
		return nil
	})
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := procgroup.Run(procgroup.Command(ctx, "go", "env", "GOMOD").Output)
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := string(out)
	for len(mod) > 0 && (mod[len(mod)-1] == '\n' || mod[len(mod)-1] == '\r') {
		mod = mod[:len(mod)-1]
	}
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the switchyard module")
	}
	return filepath.Dir(mod), nil
}

func splitTag(s string) (repo, tag string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return s[:i], s[i+1:]
		}
	}
	return s, "latest"
}
