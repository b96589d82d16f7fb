package gateway

import (
	"net/http"

	"github.com/switchyard/switchyard/pkg/bus"
)

// The operator endpoints: an admin key is required, always (with no keys
// configured at all they are closed; use `submit keys` and `submit status`
// on the NATS side then).

func (g *Gateway) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if id := identityOf(r.Context()); id == nil || !id.Admin {
			e := newError(bus.CodeAuth, "This endpoint needs an admin API key (submit keys create --admin).")
			e.status, e.code, e.openAIType = http.StatusForbidden, "admin_required", "invalid_request_error"
			writeOpenAIError(w, e)
			return
		}
		h(w, r)
	}
}

// adminStatus is the fleet's queues (as `submit status --json` shows them).
func (g *Gateway) adminStatus(w http.ResponseWriter, r *http.Request) {
	c, err := g.client("")
	if err == nil {
		var st *bus.FleetStatus
		if st, err = c.Status(r.Context()); err == nil {
			writeJSON(w, http.StatusOK, st)
			return
		}
	}
	writeOpenAIError(w, busError(err))
}

func (g *Gateway) adminListKeys(w http.ResponseWriter, r *http.Request) {
	kv, err := g.store.kv(r.Context(), BucketKeys)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	keys, err := ListKeys(r.Context(), kv)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyView(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": out})
}

func keyView(k KeyRecord) map[string]any {
	return map[string]any{"id": k.ID(), "object": "api_key", "tenant": k.Tenant, "admin": k.Admin, "name": k.Name, "hint": k.Hint, "created_at": k.CreatedAt.Unix()}
}

func (g *Gateway) adminCreateKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Tenant string `json:"tenant"`
		Name   string `json:"name"`
		Admin  bool   `json:"admin"`
	}
	if e := g.decodeBody(w, r, &in); e != nil {
		writeOpenAIError(w, e)
		return
	}
	kv, err := g.store.kv(r.Context(), BucketKeys)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	key, rec, err := CreateKey(r.Context(), kv, in.Tenant, in.Name, in.Admin, g.now())
	if err != nil {
		writeOpenAIError(w, invalidParam("tenant", "", "%v", err))
		return
	}
	v := keyView(rec)
	v["key"] = key // shown once
	writeJSON(w, http.StatusOK, v)
}

func (g *Gateway) adminRevokeKey(w http.ResponseWriter, r *http.Request) {
	kv, err := g.store.kv(r.Context(), BucketKeys)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	rec, err := RevokeKey(r.Context(), kv, r.PathValue("id"))
	if err != nil {
		e := newError(bus.CodeInvalidRequest, "%v", err)
		e.status = http.StatusNotFound
		writeOpenAIError(w, e)
		return
	}
	v := keyView(rec)
	v["deleted"] = true
	writeJSON(w, http.StatusOK, v)
}
