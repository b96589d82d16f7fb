package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/ops"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/pkg/bus"
)

func (c *Console) overviewPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	c.render(w, r, http.StatusOK, "overview", id, c.sampler.overview(id))
}

// overviewLive streams the overview's body, rendered on the server, after
// every sample (console.js swaps it in).
func (c *Console) overviewLive(w http.ResponseWriter, r *http.Request, id *Identity) {
	sse, ok := newSSE(w)
	if !ok {
		return
	}
	tick, stop := c.sampler.subscribe()
	defer stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if sse.comment() != nil {
				return
			}
		case <-tick:
			html, err := c.fragment("overview", "overview-body", id, c.sampler.overview(id))
			if err != nil || sse.send("overview", html) != nil {
				return
			}
		}
	}
}

// scope is the tenant filter of a request: a tenant's key is held to its
// own tenant; an admin picks one with ?tenant= ("_" anonymous; none: all).
func scope(r *http.Request, id *Identity) *string {
	if !id.Admin {
		t := id.Tenant
		return &t
	}
	if v := r.URL.Query().Get("tenant"); v != "" {
		t := tenantFromToken(v)
		return &t
	}
	return nil
}

// allowed reports whether id may see tenant t's data.
func allowed(id *Identity, t string) bool { return id.Admin || id.Tenant == t }

func (c *Console) jobsPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	q := r.URL.Query()
	since := 60 * time.Minute
	if d, err := time.ParseDuration(q.Get("since")); err == nil && d > 0 {
		since = min(d, 7*24*time.Hour)
	}
	query := ops.Query{ID: strings.TrimSpace(q.Get("id")), Tenant: scope(r, id), Group: q.Get("group"), Status: q.Get("status"),
		Since: c.cfg.Now().Add(-since), Limit: 100}
	if query.Status != "" && !slices.Contains(ops.Statuses, query.Status) {
		query.Status = ""
	}
	data := map[string]any{"Q": q, "Since": shortDuration(since), "Statuses": ops.Statuses}
	if tenants, err := c.jobs.Tenants(r.Context()); err == nil {
		data["Tenants"] = tenants
	}
	p, err := c.jobs.List(r.Context(), query)
	if err != nil {
		data["Error"] = err.Error()
	} else {
		data["Page"] = p
	}
	c.render(w, r, http.StatusOK, "jobs", id, data)
}

// eventRow is one line of a job's replayed event stream: consecutive chunks
// are folded into one line.
type eventRow struct {
	Type, Deployment, Code, Reason, Group string
	Attempt                               int
	Seq                                   uint64
	Chunks                                int
	Text                                  string
}

// storedEvents reads the job's events and result that the results stream
// held when the page was asked for (never waiting for more).
func (c *Console) storedEvents(ctx context.Context, tenantName, jobID string) ([]eventRow, string, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	wt, err := c.jobs.Watch(ctx, tenantName, jobID)
	if err != nil {
		return nil, "", false, err
	}
	defer wt.Close()
	var rows []eventRow
	var text strings.Builder
	const maxRows = 2000
	for n := uint64(0); n < wt.Stored && n < 100_000; n++ {
		ev, res, err := wt.Next(ctx)
		if err != nil || res != nil {
			break
		}
		if ev.Type == bus.EventChunk || ev.Type == bus.EventPartial {
			text.WriteString(ev.Delta)
			if l := len(rows); l > 0 && rows[l-1].Type == string(ev.Type) && rows[l-1].Attempt == ev.Attempt {
				rows[l-1].Chunks++
				rows[l-1].Text += ev.Delta
				continue
			}
		}
		if ev.Type == bus.EventRestart || ev.Type == bus.EventStart && text.Len() > 0 {
			text.Reset()
		}
		if len(rows) < maxRows {
			rows = append(rows, eventRow{Type: string(ev.Type), Deployment: ev.Deployment, Code: ev.Code, Reason: ops.RedactText(ev.Reason),
				Group: ev.Group, Attempt: ev.Attempt, Seq: ev.Seq, Chunks: 1, Text: ev.Delta})
		}
	}
	return rows, ops.RedactText(text.String()), wt.Durable, nil
}

func (c *Console) jobPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	t := tenantFromToken(r.PathValue("tenant"))
	if !allowed(id, t) {
		c.fail(w, r, id, http.StatusNotFound, "No such job.")
		return
	}
	job, err := c.jobs.Get(r.Context(), &t, r.PathValue("id"))
	if errors.Is(err, ops.ErrNotFound) {
		c.fail(w, r, id, http.StatusNotFound, fmt.Sprintf("No stream knows job %s of %s (results are kept for the results stream's max age).", r.PathValue("id"), tenantLabel(t)))
		return
	}
	if err != nil {
		c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
		return
	}
	data := map[string]any{"Job": job}
	rows, text, durable, err := c.storedEvents(r.Context(), t, job.ID)
	if err != nil {
		data["EventsError"] = err.Error()
	}
	data["Events"], data["Text"], data["Durable"] = rows, text, durable
	data["Live"] = job.Status == ops.StatusQueued || job.Status == ops.StatusRunning
	if job.Result != nil {
		data["Answer"] = ops.RedactText(job.Result.Text)
		if job.Result.Error != nil {
			data["ErrorMessage"] = ops.RedactText(job.Result.Error.Message)
		}
	}
	c.render(w, r, http.StatusOK, "job", id, data)
}

// jobEvents streams a job's events (stored ones first) and its result as
// SSE: event <type>, data the event's JSON.
func (c *Console) jobEvents(w http.ResponseWriter, r *http.Request, id *Identity) {
	t := tenantFromToken(r.PathValue("tenant"))
	if !allowed(id, t) || !bus.ValidJobID(r.PathValue("id")) {
		http.NotFound(w, r)
		return
	}
	wt, err := c.jobs.Watch(r.Context(), t, r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer wt.Close()
	sse, ok := newSSE(w)
	if !ok {
		return
	}
	for {
		ev, res, err := wt.Next(r.Context())
		if err != nil {
			return
		}
		if res != nil {
			_ = sse.sendJSON("result", map[string]any{"status": res.Status, "id": res.ID})
			return
		}
		ev.Delta = ops.RedactText(ev.Delta)
		ev.Reason = ops.RedactText(ev.Reason)
		if sse.sendJSON(string(ev.Type), ev) != nil {
			return
		}
	}
}

// dlqFilter reads a dead-letter filter from a query or form.
func dlqFilter(v url.Values, id *Identity) ops.Filter {
	f := ops.Filter{Group: v.Get("group"), Code: v.Get("code"), JobID: strings.TrimSpace(v.Get("job")), Replayed: v.Get("replayed")}
	if !id.Admin {
		t := id.Tenant
		f.Tenant = &t
	} else if tv := v.Get("tenant"); tv != "" {
		t := tenantFromToken(tv)
		f.Tenant = &t
	}
	return f
}

func (c *Console) dlqPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	q := r.URL.Query()
	f := dlqFilter(q, id)
	f.Limit = 200
	data := map[string]any{"Q": q}
	l, err := c.dlq.List(r.Context(), f)
	switch {
	case errors.Is(err, ops.ErrNoDLQ):
		data["Listing"] = &ops.Listing{}
	case err != nil:
		data["Error"] = err.Error()
	default:
		data["Listing"] = l
	}
	c.render(w, r, http.StatusOK, "dlq", id, data)
}

func (c *Console) deadLetterPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		c.fail(w, r, id, http.StatusNotFound, "No such dead letter.")
		return
	}
	d, err := c.dlq.Get(r.Context(), seq)
	if errors.Is(err, ops.ErrNotFound) || err == nil && !allowed(id, d.Tenant) {
		c.fail(w, r, id, http.StatusNotFound, "No such dead letter (purged, expired, or not yours).")
		return
	}
	if err != nil {
		c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "deadletter", id, map[string]any{"D": d, "Request": d.Request()})
}

// dlqTargets are the dead letters an action names: the seq values given,
// or every one the filter selects up to the sequence "upto" (what the
// confirmation page listed, so that dead letters arriving meanwhile are
// not acted on unseen).
func (c *Console) dlqTargets(ctx context.Context, v url.Values, id *Identity) ([]uint64, error) {
	if v.Get("all") == "" {
		var out []uint64
		for _, s := range v["seq"] {
			n, err := strconv.ParseUint(s, 10, 64)
			if err == nil && n > 0 && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	seqs, err := c.dlq.Select(ctx, dlqFilter(v, id))
	if err != nil {
		return nil, err
	}
	if upto, err := strconv.ParseUint(v.Get("upto"), 10, 64); err == nil {
		seqs = slices.DeleteFunc(seqs, func(s uint64) bool { return s > upto })
	}
	return seqs, nil
}

func (c *Console) dlqConfirm(w http.ResponseWriter, r *http.Request, id *Identity) {
	q := r.URL.Query()
	action := q.Get("action")
	if action != "replay" && action != "purge" {
		c.fail(w, r, id, http.StatusBadRequest, "Unknown action.")
		return
	}
	seqs, err := c.dlqTargets(r.Context(), q, id)
	if err != nil {
		c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
		return
	}
	if len(seqs) == 0 {
		c.fail(w, r, id, http.StatusBadRequest, "No dead letter selected.")
		return
	}
	var shown []ops.DeadLetter
	for _, s := range seqs[:min(len(seqs), 50)] {
		if d, err := c.dlq.Get(r.Context(), s); err == nil {
			shown = append(shown, *d)
		}
	}
	c.render(w, r, http.StatusOK, "confirm-dlq", id, map[string]any{
		"Action": action, "Seqs": seqs, "Shown": shown, "All": q.Get("all") != "", "Q": q, "Upto": slices.Max(seqs),
	})
}

func (c *Console) dlqAct(w http.ResponseWriter, r *http.Request, id *Identity) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, id, http.StatusBadRequest, err.Error())
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		c.fail(w, r, id, http.StatusBadRequest, "Not confirmed: nothing was done.")
		return
	}
	seqs, err := c.dlqTargets(r.Context(), r.PostForm, id)
	if err != nil {
		c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
		return
	}
	var msg string
	if strings.HasSuffix(r.URL.Path, "/purge") {
		n, err := c.dlq.Purge(r.Context(), seqs)
		c.audit(r, id, "dlq purge", "dead_letters", len(seqs), "purged", n, "error", errString(err))
		if err != nil {
			c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
			return
		}
		msg = fmt.Sprintf("Purged %d dead letter(s).", n)
	} else {
		out, err := c.dlq.Replay(r.Context(), seqs, "console: "+id.Who())
		replayed, skipped := 0, 0
		var jobs []string
		for _, o := range out {
			if o.Skipped == "" {
				replayed++
				jobs = append(jobs, o.JobID)
			} else {
				skipped++
			}
		}
		c.audit(r, id, "dlq replay", "dead_letters", len(seqs), "replayed", replayed, "skipped", skipped, "jobs", strings.Join(jobs[:min(len(jobs), 20)], ","), "error", errString(err))
		if err != nil {
			c.fail(w, r, id, http.StatusServiceUnavailable, err.Error())
			return
		}
		msg = fmt.Sprintf("Replayed %d dead letter(s)", replayed)
		if skipped > 0 {
			msg += fmt.Sprintf(", skipped %d (already replayed, or not replayable)", skipped)
		}
		msg += "."
	}
	http.Redirect(w, r, "/console/dlq?done="+url.QueryEscape(msg), http.StatusSeeOther)
}

// shortDuration writes 1h0m0s as 1h and 15m0s as 15m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// batchRow is a batch with its rate and time left.
type batchRow struct {
	Batch
	Done    int
	Pending int
	PerMin  float64
	ETA     time.Duration
}

func (c *Console) batchesPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	bs, err := c.be.Batches(r.Context(), scope(r, id))
	data := map[string]any{}
	if err != nil {
		data["Error"] = err.Error()
	}
	now := c.cfg.Now()
	var rows []batchRow
	for _, b := range bs {
		row := batchRow{Batch: b, Done: b.Completed + b.Failed}
		row.Pending = max(0, b.Total-row.Done)
		end := now
		if !b.EndedAt.IsZero() {
			end = b.EndedAt
		}
		if !b.InProgressAt.IsZero() && end.After(b.InProgressAt) && row.Done > 0 {
			el := end.Sub(b.InProgressAt)
			row.PerMin = float64(row.Done) / el.Minutes()
			if b.Active() && row.Pending > 0 {
				row.ETA = time.Duration(float64(row.Pending) / float64(row.Done) * float64(el)).Round(time.Second)
			}
		}
		rows = append(rows, row)
	}
	data["Batches"] = rows
	c.render(w, r, http.StatusOK, "batches", id, data)
}

func (c *Console) download(w http.ResponseWriter, r *http.Request, id *Identity) {
	t := tenantFromToken(r.PathValue("tenant"))
	if !allowed(id, t) {
		http.NotFound(w, r)
		return
	}
	rc, name, err := c.be.OpenFile(r.Context(), t, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, id, http.StatusNotFound, err.Error())
		return
	}
	defer rc.Close() //nolint:errcheck // read-only
	w.Header().Set("Content-Type", "application/jsonl")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, name)))
	_, _ = io.Copy(w, rc)
}

func (c *Console) batchCancelConfirm(w http.ResponseWriter, r *http.Request, id *Identity) {
	c.render(w, r, http.StatusOK, "confirm", id, map[string]any{
		"Question": fmt.Sprintf("Cancel batch %s of %s? Lines not yet finished are cancelled; finished ones stay in its output.", r.PathValue("id"), tenantLabel(tenantFromToken(r.PathValue("tenant")))),
		"Action":   r.URL.Path, "Button": "Cancel the batch", "Back": "/console/batches",
	})
}

func (c *Console) batchCancel(w http.ResponseWriter, r *http.Request, id *Identity) {
	if r.PostFormValue("confirm") != "yes" {
		c.fail(w, r, id, http.StatusBadRequest, "Not confirmed: nothing was done.")
		return
	}
	t := tenantFromToken(r.PathValue("tenant"))
	b, err := c.be.CancelBatch(r.Context(), t, r.PathValue("id"))
	c.audit(r, id, "batch cancel", "batch", r.PathValue("id"), "tenant", t, "error", errString(err))
	if err != nil {
		c.fail(w, r, id, http.StatusNotFound, err.Error())
		return
	}
	http.Redirect(w, r, "/console/batches?done="+url.QueryEscape("Batch "+b.ID+" is "+b.Status+"."), http.StatusSeeOther)
}

// tenantRow is a tenant's spend against its budget.
type tenantRow struct {
	Name        string
	Budget      *tenant.Limit
	Spent       tenant.Spent
	WindowStart time.Time
	Err         string
}

func (c *Console) tenantsPage(w http.ResponseWriter, r *http.Request, id *Identity) {
	ctx := r.Context()
	data := map[string]any{}
	names, err := c.jobs.Tenants(ctx)
	if err != nil {
		data["Error"] = err.Error()
	}
	for n := range c.cfg.Budgets {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	budgets, err := tenant.Open(ctx, c.js, c.cfg.Budgets)
	if err != nil {
		data["Error"] = err.Error()
	}
	var rows []tenantRow
	for _, n := range names {
		if !allowed(id, n) {
			continue
		}
		row := tenantRow{Name: n}
		if l, ok := c.cfg.Budgets[n]; ok {
			row.Budget = &l
			if budgets != nil {
				row.WindowStart = budgets.WindowStart(n)
				if row.Spent, err = budgets.Spent(ctx, n); err != nil {
					row.Err = err.Error()
				}
			}
		}
		rows = append(rows, row)
	}
	data["Tenants"] = rows
	if id.Admin {
		keys, err := c.be.Keys(ctx)
		if err != nil {
			data["KeysError"] = err.Error()
		}
		data["Keys"] = keys
	}
	c.render(w, r, http.StatusOK, "tenants", id, data)
}

func (c *Console) keyConfirm(w http.ResponseWriter, r *http.Request, id *Identity) {
	q := r.URL.Query()
	if rev := q.Get("revoke"); rev != "" {
		c.render(w, r, http.StatusOK, "confirm", id, map[string]any{
			"Question": fmt.Sprintf("Revoke key %s? Every request and console session with it fails from now on, on every gateway.", rev),
			"Action":   "/console/keys/" + url.PathEscape(rev) + "/revoke", "Button": "Revoke the key", "Back": "/console/tenants",
		})
		return
	}
	t := strings.TrimSpace(q.Get("tenant"))
	if t != "" && !bus.ValidTenant(t) {
		c.fail(w, r, id, http.StatusBadRequest, fmt.Sprintf("%q is not a tenant name ([a-z0-9][a-z0-9_-]{0,31}).", t))
		return
	}
	kind := "a key"
	if q.Get("admin") != "" {
		kind = "an ADMIN key (it sees and does everything)"
	}
	c.render(w, r, http.StatusOK, "confirm", id, map[string]any{
		"Question": fmt.Sprintf("Create %s for %s, named %q? It is shown once, on the next page.", kind, tenantLabel(t), q.Get("name")),
		"Action":   "/console/keys", "Button": "Create the key", "Back": "/console/tenants",
		"Fields": map[string]string{"tenant": t, "name": q.Get("name"), "admin": q.Get("admin")},
	})
}

func (c *Console) keyCreate(w http.ResponseWriter, r *http.Request, id *Identity) {
	if r.PostFormValue("confirm") != "yes" {
		c.fail(w, r, id, http.StatusBadRequest, "Not confirmed: nothing was done.")
		return
	}
	t, name, admin := r.PostFormValue("tenant"), r.PostFormValue("name"), r.PostFormValue("admin") != ""
	key, rec, err := c.be.CreateKey(r.Context(), t, name, admin)
	c.audit(r, id, "key create", "key", rec.ID, "key_tenant", t, "admin", admin, "error", errString(err))
	if err != nil {
		c.fail(w, r, id, http.StatusBadRequest, err.Error())
		return
	}
	c.render(w, r, http.StatusOK, "key-created", id, map[string]any{"Key": key, "Rec": rec})
}

func (c *Console) keyRevoke(w http.ResponseWriter, r *http.Request, id *Identity) {
	if r.PostFormValue("confirm") != "yes" {
		c.fail(w, r, id, http.StatusBadRequest, "Not confirmed: nothing was done.")
		return
	}
	rec, err := c.be.RevokeKey(r.Context(), r.PathValue("id"))
	c.audit(r, id, "key revoke", "key", r.PathValue("id"), "key_tenant", rec.Tenant, "error", errString(err))
	if err != nil {
		c.fail(w, r, id, http.StatusNotFound, err.Error())
		return
	}
	http.Redirect(w, r, "/console/tenants?done="+url.QueryEscape("Revoked key "+rec.ID+"."), http.StatusSeeOther)
}
