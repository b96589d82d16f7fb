package deployments

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/config"
	"github.com/switchyard/switchyard/pkg/bus"
)

// composeCommand returns the compose CLI installed here: the docker plugin
// ("docker compose") when it works, else the standalone docker-compose.
func composeCommand() ([]string, bool) {
	if _, err := exec.LookPath("docker"); err == nil {
		if exec.Command("docker", "compose", "version").Run() == nil {
			return []string{"docker", "compose"}, true
		}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}, true
	}
	return nil, false
}

func TestComposeConfigValidates(t *testing.T) {
	t.Parallel()
	cmd, ok := composeCommand()
	if !ok {
		t.Skip("neither `docker compose` nor `docker-compose` is installed; cannot run `compose config`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append(cmd[1:], "-f", "docker-compose.yml", "config")
	c := exec.CommandContext(ctx, cmd[0], args...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	require.NoError(t, err, "compose config: %s", stderr.String())
	// A warning (an unset variable, a deprecated key) is a defect too.
	require.NotContains(t, strings.ToLower(stderr.String()), "warn", stderr.String())

	// The resolved file (anchors merged) has the fleet the README promises.
	var resolved composeFile
	require.NoError(t, yaml.Unmarshal(out, &resolved))
	checkCompose(t, resolved)
}

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Environment map[string]any `yaml:"environment"`
		Volumes     []string       `yaml:"volumes"`
		ReadOnly    bool           `yaml:"read_only"`
		StopGrace   string         `yaml:"stop_grace_period"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func checkCompose(t *testing.T, f composeFile) {
	t.Helper()
	var nats, workers []string
	for name := range f.Services {
		switch {
		case strings.HasPrefix(name, "nats-"):
			nats = append(nats, name)
		case strings.HasPrefix(name, "worker-"):
			workers = append(workers, name)
		}
	}
	slices.Sort(nats)
	slices.Sort(workers)
	require.Equal(t, []string{"nats-1", "nats-2", "nats-3"}, nats)
	require.Equal(t, []string{"worker-1", "worker-2", "worker-3"}, workers)

	for _, name := range nats {
		s := f.Services[name]
		require.Equal(t, "switchyard/nats:dev", s.Image, name)
		require.Contains(t, strings.Join(s.Volumes, "\n"), "nats/"+name+".conf:/etc/nats/nats.conf", "%s mounts its own config", name)
		require.Contains(t, strings.Join(s.Volumes, "\n"), name+"-data:/data", "%s keeps JetStream on a volume", name)
		require.Contains(t, f.Volumes, name+"-data")
	}
	shutdownGrace := time.Duration(0)
	for _, name := range workers {
		s := f.Services[name]
		require.Equal(t, "switchyard/worker:dev", s.Image, name)
		env := s.Environment
		urls := strings.Split(env["NATS_URL"].(string), ",")
		require.ElementsMatch(t, []string{"nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"}, urls, "%s knows every node", name)
		require.Equal(t, "3", env["SWITCHYARD_REPLICAS"], name)
		require.Equal(t, "/etc/switchyard/models.yaml", env["SWITCHYARD_CONFIG"], name)
		require.Contains(t, strings.Join(s.Volumes, "\n"), ":/etc/switchyard/models.yaml", "%s mounts the model file", name)
		var err error
		shutdownGrace, err = time.ParseDuration(env["SWITCHYARD_SHUTDOWN_GRACE"].(string))
		require.NoError(t, err)
		stop, err := time.ParseDuration(s.StopGrace)
		require.NoError(t, err, "%s: stop_grace_period", name)
		require.Greater(t, stop, shutdownGrace, "%s: docker must wait longer than the worker's shutdown grace", name)
		require.True(t, s.ReadOnly, "%s runs on a read-only root filesystem", name)
	}
}

func TestNATSNodeConfigs(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for i := 1; i <= 3; i++ {
		node := "nats-" + string(rune('0'+i))
		opts := processNATSConfig(t, filepath.Join("nats", node+".conf"))
		require.Equal(t, node, opts.ServerName)
		require.False(t, names[opts.ServerName], "server names are unique")
		names[opts.ServerName] = true
		require.True(t, opts.JetStream)
		require.True(t, opts.SyncAlways, "%s: sync_interval: always", node)
		require.Equal(t, "/data", opts.StoreDir, "%s stores JetStream on the image's /data volume", node)
		require.Equal(t, "switchyard", opts.Cluster.Name)
		require.Equal(t, 6222, opts.Cluster.Port)
		require.Equal(t, 8222, opts.HTTPPort, "%s: monitoring for KEDA and probes", node)
		var routes []string
		for _, u := range opts.Routes {
			routes = append(routes, u.Host)
		}
		require.ElementsMatch(t, []string{"nats-1:6222", "nats-2:6222", "nats-3:6222"}, routes)
		require.EqualValues(t, 1<<20, opts.MaxPayload, "DESIGN.md: 1 MiB max payload")
	}
}

func TestModelFilesLoad(t *testing.T) {
	// Not parallel: t.Setenv for the ${...} references of the k8s file.
	for _, k := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"} {
		t.Setenv(k, "test-placeholder")
	}
	var cm configMap
	decodeOne(t, filepath.Join("k8s", "configmap-models.yaml"), &cm)
	k8sModels := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(k8sModels, []byte(cm.Data["models.yaml"]), 0o600))

	for _, path := range []string{filepath.Join("compose", "models.yaml"), k8sModels} {
		m, err := config.LoadModels(path)
		require.NoError(t, err, path)
		require.NotEmpty(t, m.GroupNames(), path)
	}
}

// Meta is the head of any Kubernetes object (exported: the YAML decoder
// fills embedded structs only when exported).
type Meta struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
}

type configMap struct {
	Meta `yaml:",inline"`
	Data map[string]string `yaml:"data"`
}

type secret struct {
	Meta       `yaml:",inline"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type deployment struct {
	Meta `yaml:",inline"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []struct {
					Name  string `yaml:"name"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					EnvFrom []struct {
						ConfigMapRef *struct {
							Name string `yaml:"name"`
						} `yaml:"configMapRef"`
						SecretRef *struct {
							Name string `yaml:"name"`
						} `yaml:"secretRef"`
					} `yaml:"envFrom"`
					Env []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					SecurityContext struct {
						ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
						AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
						RunAsNonRoot             bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					LivenessProbe  *probe `yaml:"livenessProbe"`
					ReadinessProbe *probe `yaml:"readinessProbe"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type scaledObject struct {
	Meta `yaml:",inline"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount int `yaml:"minReplicaCount"`
		Triggers        []struct {
			Type     string            `yaml:"type"`
			Metadata map[string]string `yaml:"metadata"`
		} `yaml:"triggers"`
	} `yaml:"spec"`
}

// decodeAll decodes every document of a YAML file into a fresh T.
func decodeAll[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, path)
		out = append(out, v)
	}
	require.NotEmpty(t, out, "%s has no document", path)
	return out
}

func decodeOne[T any](t *testing.T, path string, v *T) {
	t.Helper()
	docs := decodeAll[T](t, path)
	require.Len(t, docs, 1, path)
	*v = docs[0]
}

func TestK8sManifests(t *testing.T) {
	t.Parallel()
	var kust struct {
		Meta      `yaml:",inline"`
		Namespace string   `yaml:"namespace"`
		Resources []string `yaml:"resources"`
	}
	decodeOne(t, filepath.Join("k8s", "kustomization.yaml"), &kust)
	require.Equal(t, "Kustomization", kust.Kind)

	wantKinds := map[string]string{
		"namespace.yaml":        "Namespace",
		"configmap-env.yaml":    "ConfigMap",
		"configmap-models.yaml": "ConfigMap",
		"secret.yaml":           "Secret",
		"deployment.yaml":       "Deployment",
		"service.yaml":          "Service",
		"pdb.yaml":              "PodDisruptionBudget",
		"scaledobject.yaml":     "ScaledObject",
		"kustomization.yaml":    "Kustomization",
	}
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		base := filepath.Base(f)
		want, ok := wantKinds[base]
		require.True(t, ok, "unexpected manifest %s: add it to this test", f)
		for _, doc := range decodeAll[Meta](t, f) {
			require.Equal(t, want, doc.Kind, f)
			require.NotEmpty(t, doc.APIVersion, f)
			require.NotEmpty(t, doc.Metadata.Name+doc.Kind, f)
		}
		if base != "kustomization.yaml" {
			require.Contains(t, kust.Resources, base, "%s is not in kustomization.yaml", base)
		}
	}
	require.Len(t, kust.Resources, len(wantKinds)-1, "kustomization lists a file that does not exist")

	var envCM, modelsCM configMap
	decodeOne(t, filepath.Join("k8s", "configmap-env.yaml"), &envCM)
	decodeOne(t, filepath.Join("k8s", "configmap-models.yaml"), &modelsCM)
	var sec secret
	decodeOne(t, filepath.Join("k8s", "secret.yaml"), &sec)
	var dep deployment
	decodeOne(t, filepath.Join("k8s", "deployment.yaml"), &dep)
	var so scaledObject
	decodeOne(t, filepath.Join("k8s", "scaledobject.yaml"), &so)

	t.Run("env names are the worker's", func(t *testing.T) {
		known := envNames(t)
		for k := range envCM.Data {
			require.Contains(t, known, k, "configmap-env.yaml sets %s, which the worker does not read", k)
		}
		require.Empty(t, sec.Data, "secret.yaml holds placeholders in stringData, never encoded values")
		for k, v := range sec.StringData {
			if strings.HasPrefix(k, "NATS_") {
				require.Contains(t, known, k)
			}
			if strings.HasSuffix(k, "_KEY") || strings.HasSuffix(k, "PASSWORD") {
				require.Equal(t, "CHANGE_ME", v, "secret.yaml: %s must be a placeholder", k)
			}
		}
	})

	t.Run("secret has every key the model file references", func(t *testing.T) {
		refs := regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`).FindAllStringSubmatch(modelsCM.Data["models.yaml"], -1)
		require.NotEmpty(t, refs)
		for _, r := range refs {
			require.Contains(t, sec.StringData, r[1], "models.yaml references ${%s}; secret.yaml lacks it", r[1])
		}
	})

	t.Run("deployment", func(t *testing.T) {
		require.Equal(t, 3, dep.Spec.Replicas)
		ps := dep.Spec.Template.Spec
		require.Len(t, ps.Containers, 1)
		c := ps.Containers[0]

		grace, err := time.ParseDuration(envCM.Data["SWITCHYARD_SHUTDOWN_GRACE"])
		require.NoError(t, err)
		require.Greater(t, time.Duration(ps.TerminationGracePeriodSeconds)*time.Second, grace,
			"terminationGracePeriodSeconds must exceed SWITCHYARD_SHUTDOWN_GRACE")

		require.True(t, ps.SecurityContext.RunAsNonRoot)
		require.Equal(t, 65532, ps.SecurityContext.RunAsUser)
		require.True(t, c.SecurityContext.ReadOnlyRootFilesystem)
		require.False(t, c.SecurityContext.AllowPrivilegeEscalation)
		require.NotEmpty(t, c.Resources.Requests["cpu"])
		require.NotEmpty(t, c.Resources.Requests["memory"])
		require.NotEmpty(t, c.Resources.Limits["memory"])

		require.Len(t, c.Ports, 1)
		require.Equal(t, 9464, c.Ports[0].ContainerPort)
		require.True(t, strings.HasSuffix(envCM.Data["SWITCHYARD_METRICS_ADDR"], ":9464"))
		require.False(t, strings.HasPrefix(envCM.Data["SWITCHYARD_METRICS_ADDR"], "127."), "probes need the pod IP")
		require.NotNil(t, c.LivenessProbe)
		require.NotNil(t, c.ReadinessProbe)
		require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
		require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
		for _, p := range []*probe{c.LivenessProbe, c.ReadinessProbe} {
			require.Contains(t, []any{c.Ports[0].Name, uint64(9464)}, p.HTTPGet.Port)
		}

		var refs []string
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				refs = append(refs, "cm/"+ef.ConfigMapRef.Name)
			}
			if ef.SecretRef != nil {
				refs = append(refs, "secret/"+ef.SecretRef.Name)
			}
		}
		require.ElementsMatch(t, []string{"cm/" + envCM.Metadata.Name, "secret/" + sec.Metadata.Name}, refs)

		// SWITCHYARD_CONFIG names the file the models ConfigMap mounts.
		var configPath string
		for _, e := range c.Env {
			if e.Name == "SWITCHYARD_CONFIG" {
				configPath = e.Value
			}
		}
		require.Equal(t, "/etc/switchyard/models.yaml", configPath)
		var volume string
		for _, v := range ps.Volumes {
			if v.ConfigMap != nil && v.ConfigMap.Name == modelsCM.Metadata.Name {
				volume = v.Name
			}
		}
		require.NotEmpty(t, volume, "no volume of ConfigMap %s", modelsCM.Metadata.Name)
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.Name == volume {
				_, isKey := modelsCM.Data[filepath.Base(configPath)]
				mounted = m.MountPath == filepath.Dir(configPath) && isKey
			}
		}
		require.True(t, mounted, "ConfigMap %s must be mounted so that %s exists", modelsCM.Metadata.Name, configPath)
	})

	t.Run("KEDA scales on every group's class consumers", func(t *testing.T) {
		require.Equal(t, dep.Metadata.Name, so.Spec.ScaleTargetRef.Name)
		require.GreaterOrEqual(t, so.Spec.MinReplicaCount, 1)
		// Group names only: ParseModels would also want the keys set.
		var models struct {
			Groups map[string]any `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(modelsCM.Data["models.yaml"]), &models))
		require.NotEmpty(t, models.Groups)
		var consumers []string
		for _, tr := range so.Spec.Triggers {
			require.Equal(t, "nats-jetstream", tr.Type)
			require.Equal(t, bus.StreamRequests, tr.Metadata["stream"])
			require.NotEmpty(t, tr.Metadata["lagThreshold"])
			require.NotEmpty(t, tr.Metadata["natsServerMonitoringEndpoint"])
			consumers = append(consumers, tr.Metadata["consumer"])
		}
		var want []string
		for g := range models.Groups {
			for _, p := range bus.Priorities {
				want = append(want, bus.ConsumerNameFor(g, p))
			}
		}
		require.ElementsMatch(t, want, consumers)
	})

	t.Run("kustomize build", func(t *testing.T) {
		if _, err := exec.LookPath("kubectl"); err != nil {
			t.Skip("kubectl not installed; kustomize build not checked")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "kubectl", "kustomize", "k8s").CombinedOutput()
		require.NoError(t, err, "%s", out)
		docs := 0
		for _, doc := range decodeAllBytes(t, out) {
			require.NotEmpty(t, doc.Kind)
			docs++
		}
		require.Equal(t, len(kust.Resources), docs)
		require.Contains(t, string(out), "namespace: "+kust.Namespace)
	})
}

func decodeAllBytes(t *testing.T, b []byte) []Meta {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []Meta
	for {
		var v Meta
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, v)
	}
}

// envNames are the environment variables the worker reads (the env tags of
// config.Env), plus the Go runtime's.
func envNames(t *testing.T) []string {
	t.Helper()
	names := []string{"GOMEMLIMIT", "GOMAXPROCS"}
	for f := range reflectFields[config.Env]() {
		if tag := f.Tag.Get("env"); tag != "" {
			names = append(names, tag)
		}
	}
	require.Contains(t, names, "NATS_URL")
	return names
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("build-image.sh")
	require.NoError(t, err)

	tests := []struct {
		file string
		want []string // instructions, normalised to single spaces
	}{
		{"Dockerfile", []string{"FROM scratch", "USER 65532:65532", "EXPOSE 9464", `ENTRYPOINT ["/worker"]`}},
		{filepath.Join("nats", "Dockerfile"), []string{"FROM scratch", "USER 65532:65532", "EXPOSE 4222 6222 8222", `ENTRYPOINT ["/nats-server"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			ins := dockerInstructions(t, tt.file)
			for _, w := range tt.want {
				require.Contains(t, ins, w)
			}
			require.Equal(t, 1, countPrefix(ins, "FROM "), "one stage: nothing to pull, nothing to compile in")
			// Every COPY source is something build-image.sh puts in the context.
			for _, in := range ins {
				if !strings.HasPrefix(in, "COPY ") {
					continue
				}
				f := strings.Fields(in)
				src := strings.TrimSuffix(f[len(f)-2], "/")
				require.Contains(t, string(script), filepath.Base(src), "%s: COPY %s, which build-image.sh does not build", tt.file, src)
			}
		})
	}
	t.Run("worker listens beyond loopback", func(t *testing.T) {
		t.Parallel()
		ins := dockerInstructions(t, "Dockerfile")
		env := strings.Join(ins, "\n")
		require.Contains(t, env, "SWITCHYARD_METRICS_ADDR=0.0.0.0:9464")
		require.Contains(t, env, "SWITCHYARD_DATA_DIR=/data")
	})
	t.Run("build-image.sh parses", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command("bash", "-n", "build-image.sh").CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(script), "CGO_ENABLED=0")
		require.Contains(t, string(script), "-trimpath")
		require.Contains(t, string(script), "switchyard/worker:dev")
	})
}

// dockerInstructions returns a Dockerfile's instructions, continuation
// lines joined and whitespace collapsed, comments dropped.
func dockerInstructions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	cur := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cont := strings.HasSuffix(line, `\`)
		cur += strings.TrimSuffix(line, `\`) + " "
		if !cont {
			out = append(out, strings.Join(strings.Fields(cur), " "))
			cur = ""
		}
	}
	require.Empty(t, cur, "%s ends in a continuation", path)
	return out
}

func countPrefix(ss []string, p string) int {
	n := 0
	for _, s := range ss {
		if strings.HasPrefix(s, p) {
			n++
		}
	}
	return n
}

// processNATSConfig parses a nats-server config file the way the server
// does at start, so a bad option fails here rather than in a container.
func processNATSConfig(t *testing.T, path string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err, path)
	return opts
}

// reflectFields yields the fields of struct T.
func reflectFields[T any]() func(yield func(reflect.StructField) bool) {
	return func(yield func(reflect.StructField) bool) {
		for f := range reflect.TypeFor[T]().Fields() {
			if !yield(f) {
				return
			}
		}
	}
}

// The README shows the permissions file; they must not drift apart.
func TestReadmeShowsPermissions(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	conf, err := os.ReadFile(filepath.Join("nats", "permissions.conf"))
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(conf), "authorization {")
	require.True(t, ok)
	require.Contains(t, string(readme), "authorization {"+strings.TrimRight(block, "\n"),
		"README.md's permissions block differs from nats/permissions.conf")
}
