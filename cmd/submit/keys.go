package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchyard/switchyard/internal/gateway"
)

// cmdKeys manages the HTTP gateway's API keys in the LLM_API_KEYS bucket.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := newCommand("submit keys", "submit keys create [--tenant T] [--name N] [--admin] | list | revoke <id> | hash <key>", `
Manages the HTTP gateway's API keys. Keys are kept hashed (SHA-256) in the
KV bucket LLM_API_KEYS, which every gateway watches: a key works, or stops
working, on every gateway at once. "create" prints the new key once; it is
not stored and cannot be shown again. "list" shows ids, tenants and hints,
"revoke" deletes a key by id. "hash" prints the model-file line for a key
(api_keys: - sha256: ...) for keys kept in the model file instead.

While no key exists at all, the gateway serves everyone as the anonymous
tenant; the first key created closes it to requests without a key.`, stderr)
	tenant := cmd.fs.StringP("tenant", "t", "", "the key's tenant (default: the anonymous tenant)")
	name := cmd.fs.StringP("name", "n", "", "a label for the key")
	admin := cmd.fs.Bool("admin", false, "the key may call the gateway's /admin endpoints")
	pos, err := cmd.parse(args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return cmd.usageErr("missing the action: create, list, revoke or hash")
	}
	action, rest := pos[0], pos[1:]
	want := map[string]int{"create": 0, "list": 0, "revoke": 1, "hash": 1}
	n, ok := want[action]
	if !ok {
		return cmd.usageErr("%q is not an action: create, list, revoke or hash", action)
	}
	if len(rest) != n {
		return cmd.usageErr("submit keys %s takes %d argument(s), got %d", action, n, len(rest))
	}
	if action == "hash" {
		fmt.Fprintf(stdout, "api_keys:\n  - sha256: %s\n", strings.TrimPrefix(gateway.HashKey(rest[0]), "sha256:"))
		return nil
	}
	nc, env, js, err := connectJS()
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := gateway.KeysBucket(ctx, js, env.Replicas)
	if err != nil {
		return err
	}
	switch action {
	case "create":
		key, rec, err := gateway.CreateKey(ctx, kv, *tenant, *name, *admin, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		fmt.Fprintf(stderr, "created key %s for %s (shown once: it is stored hashed)\n", rec.ID(), tenantLabel(rec.Tenant))
	case "list":
		keys, err := gateway.ListKeys(ctx, kv)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTENANT\tADMIN\tNAME\tHINT\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", k.ID(), tenantLabel(k.Tenant), k.Admin, k.Name, k.Hint, k.CreatedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	case "revoke":
		rec, err := gateway.RevokeKey(ctx, kv, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "revoked key %s of %s\n", rec.ID(), tenantLabel(rec.Tenant))
	}
	return nil
}

func tenantLabel(t string) string {
	if t == "" {
		return "(anonymous)"
	}
	return t
}
