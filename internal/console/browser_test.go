package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/internal/offload"
	"github.com/switchyard/switchyard/internal/tenant"
	"github.com/switchyard/switchyard/pkg/bus"
)

// The browser tests drive a real Chromium against a gateway, workers and a
// nats-server in process. They run one at a time (a browser each is
// heavy on a small machine). Each saves screenshots into its artifact
// directory (go test -artifacts -outputdir DIR keeps them).

// startBatch uploads n lines for model and starts a Batch API batch.
func (f *fleet) startBatch(model string, n int) string {
	t := f.t
	var lines bytes.Buffer
	for i := range n {
		fmt.Fprintf(&lines, `{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"line %d"}]}}`+"\n", i, model, i)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("purpose", "batch"))
	fw, err := mw.CreateFormFile("file", "in.jsonl")
	require.NoError(t, err)
	_, _ = fw.Write(lines.Bytes())
	require.NoError(t, mw.Close())
	var file struct{ ID string }
	f.postJSON("/v1/files", mw.FormDataContentType(), &body, &file)
	var batch struct{ ID string }
	f.postJSON("/v1/batches", "application/json", strings.NewReader(fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, file.ID)), &batch)
	require.NotEmpty(t, batch.ID)
	return batch.ID
}

// vendorBatch records a vendor batch of n lines in flight in the anonymous
// tenant's offload bucket, as the worker that sent it would.
func (f *fleet) vendorBatch(group, vendorID string, n int) {
	t := f.t
	kv, err := f.js.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: bus.Subjects{}.OffloadBucket(), History: 1})
	require.NoError(t, err)
	b := offload.Batch{Ref: "sy-test", Group: group, Deployment: "openai-batch", Model: "gpt-4o-mini",
		State: "submitted", VendorID: vendorID, Status: "in_progress", Done: 12, Created: time.Now()}
	for i := range n {
		b.Jobs = append(b.Jobs, fmt.Sprintf("job-%d", i))
	}
	data, err := json.Marshal(b)
	require.NoError(t, err)
	_, err = kv.Put(t.Context(), bus.OffloadBatchKey(group, b.Ref), data)
	require.NoError(t, err)
}

func (f *fleet) postJSON(path, ctype string, body io.Reader, out any) {
	t := f.t
	resp, err := http.Post(f.URL+path, ctype, body)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, out))
}

func (f *fleet) batchStatus(id string) (status string, completed int) {
	resp, err := http.Get(f.URL + "/v1/batches/" + id)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var b struct {
		Status        string
		RequestCounts struct{ Completed int } `json:"request_counts"`
	}
	require.NoError(f.t, json.NewDecoder(resp.Body).Decode(&b))
	return b.Status, b.RequestCounts.Completed
}

// queued reads a group's queue depth from the overview page as it is now:
// the sum of its rows, one per priority class (-1 while the group has no
// row).
func (b *browser) queued(group string) int {
	return eval[int](b, fmt.Sprintf(`(function(){var es=document.querySelectorAll('tr[data-group=%q] td.depth');if(!es.length)return -1;var n=0;es.forEach(function(e){n+=parseInt(e.dataset.queued,10)});return n})()`, group))
}

// donePerMin reads a group's jobs done per minute over the last minute
// from the overview page: the sum of its rows.
func (b *browser) donePerMin(group string) float64 {
	return eval[float64](b, fmt.Sprintf(`(function(){var n=0;document.querySelectorAll('tr[data-group=%q] td.done1').forEach(function(e){n+=parseFloat(e.innerText)||0});return n})()`, group))
}

// TestOverviewFollowsAQueueThroughABatch: without reloading, the overview
// shows the slow group's queue depth rise while a batch of 60 lines runs
// on workers that take 2 at a time, and fall back to zero when it is done;
// the throughput, the workers and the deployment's TTFT are filled in.
func TestOverviewFollowsAQueueThroughABatch(t *testing.T) {
	f := newFleet(t)
	b := newBrowser(t)
	b.run(navigate(f.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#overview`)))
	require.Eventually(t, func() bool { return b.queued("slow") == 0 }, 20*time.Second, 50*time.Millisecond, "the slow group's row, empty")

	// A vendor batch in flight (a group's vendor_batch), as the worker
	// that sent it records it, shows on the live page.
	f.vendorBatch("slow", "batch_vb1", 40)
	require.Eventually(t, func() bool {
		return regexp.MustCompile(`slow\s+openai-batch\s+batch_vb1\s+in_progress\s+12 / 40`).MatchString(b.text(`table.vendor-batches tbody`))
	}, 20*time.Second, 50*time.Millisecond, "the vendor batch in flight, on the live overview")

	const lines = 60
	id := f.startBatch("slow", lines)
	peak, shot := 0, false
	require.Eventually(t, func() bool {
		q := b.queued("slow")
		peak = max(peak, q)
		if peak >= 20 && !shot {
			b.shot("overview")
			shot = true
		}
		return peak >= 20
	}, 30*time.Second, 50*time.Millisecond, "the queue depth rises on the live page")

	// It drains while the page stays open (the screenshot for the issue:
	// rates and the deployment row filled in mid-batch).
	require.Eventually(t, func() bool {
		q := b.queued("slow")
		return q >= 0 && q <= peak/2
	}, 30*time.Second, 50*time.Millisecond, "the queue depth falls on the live page")
	b.shot("overview-draining")

	// Mid-run, the batches page shows its progress.
	b.run(navigate(f.URL+"/console/batches"), chromedp.WaitVisible(chromedp.CSS(`table.batches`)))
	require.Contains(t, b.text(`table.batches tbody`), id)
	b.shot("batches")

	b.run(navigate(f.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#overview`)))
	require.Eventually(t, func() bool {
		st, _ := f.batchStatus(id)
		return st == "completed" && b.queued("slow") == 0
	}, 60*time.Second, 100*time.Millisecond, "the queue falls back to zero once the batch is done")
	_, done := f.batchStatus(id)
	require.Equal(t, lines, done)

	// The rates and the deployment row come from the workers' heartbeats.
	require.Eventually(t, func() bool { return b.donePerMin("slow") > 0 }, 10*time.Second, 100*time.Millisecond, "jobs done per minute, from the workers' counters")
	var deps string
	require.Eventually(t, func() bool {
		deps = b.text(`table.deps tbody`)
		return regexp.MustCompile(`mock-slow\s+closed\s+0 / ∞\s+\d+\s+\d+\s+\d+(\.\d+)?ms`).MatchString(deps)
	}, 10*time.Second, 100*time.Millisecond, "the deployment: breaker, nothing in flight, rpm and tpm used, a TTFT percentile")
	require.Contains(t, b.text(`#sampled`), "1 worker(s) connected")

	// The batch's output file downloads from the batches page.
	b.run(navigate(f.URL+"/console/batches"), chromedp.WaitVisible(chromedp.CSS(`table.batches`)))
	href := eval[string](b, `document.querySelector('table.batches a[href*="/console/files/"]').getAttribute('href')`)
	resp, err := http.Get(f.URL + href)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, lines, bytes.Count(out, []byte("\n")), "one output line per input line")

	// Phone width: the same page, still usable.
	b.run(chromedp.EmulateViewport(390, 844), navigate(f.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`#overview`)))
	b.shot("overview-phone")
}

// TestJobPageShowsAttemptsAndReplaysEvents: a job whose first call failed
// shows both attempts, the retry event and its chunks replayed from the
// results stream; a running job's page fills with its tokens live.
func TestJobPageShowsAttemptsAndReplaysEvents(t *testing.T) {
	f := newFleet(t)
	b := newBrowser(t)
	ctx := ctxT(t, time.Minute)
	res, err := f.client.Submit(ctx, "retry", req("retry-1", "tell me"))
	require.NoError(t, err)
	require.Len(t, res.Attempts, 2)

	b.run(navigate(f.URL+"/console/jobs?id=retry-1"), chromedp.WaitVisible(chromedp.CSS(`table.jobs`)))
	require.Contains(t, b.text(`table.jobs tbody`), "ok")
	b.run(chromedp.Click(chromedp.CSS(`table.jobs a[href="/console/jobs/_/retry-1"]`)), chromedp.WaitVisible(chromedp.CSS(`table.attempts`)))
	require.Equal(t, "ok", b.text(`#job-status`))
	attempts := b.text(`table.attempts tbody`)
	require.Regexp(t, `1\s+mock-retry\s+\S+\s+provider_unavailable`, attempts)
	require.Regexp(t, `2\s+mock-retry\s+\S+\s+ok`, attempts)
	events := b.text(`table.events tbody`)
	for _, e := range []string{"start", "retry", "chunk ×6"} {
		require.Contains(t, events, e)
	}
	require.Equal(t, res.Text, b.text(`#live-text`))
	require.Contains(t, b.text(`dl.facts`), "mock-retry")
	b.shot("job")

	// A running job: its page fills with tokens while it runs, then shows
	// its result.
	job, err := f.client.Publish(ctx, "long", req("long-1", "a long answer"))
	require.NoError(t, err)
	defer job.Close()
	require.Eventually(t, func() bool {
		j, err := f.js.Stream(ctx, bus.StreamResults)
		if err != nil {
			return false
		}
		_, err = j.GetLastMsgForSubject(ctx, "llm.res.long-1.events")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the long job started")
	b.run(navigate(f.URL+"/console/jobs/_/long-1"), chromedp.WaitVisible(chromedp.CSS(`#live-text`)))
	require.Equal(t, "running", b.text(`#job-status`))
	require.Eventually(t, func() bool {
		live := eval[string](b, `document.getElementById('job-status') && document.getElementById('job-status').textContent === 'running' ? document.getElementById('live-text').textContent : ''`)
		return len(strings.Fields(live)) >= 3
	}, 10*time.Second, 20*time.Millisecond, "tokens arrive live while the job runs")
	b.shot("job-live")
	require.Eventually(t, func() bool {
		return eval[string](b, `document.getElementById('job-status') ? document.getElementById('job-status').textContent : ''`) == "ok"
	}, 20*time.Second, 50*time.Millisecond, "the page shows the result once the job ends")
}

// TestDeadLetterReplayedFromTheConsole: two jobs dead-lettered by a worker
// that delivers once, and an undecodable message, are listed with their
// reasons; one is replayed from the console through the confirmation
// page, runs on a fixed worker, and has an ok result; its dead letter is
// kept, marked replayed.
func TestDeadLetterReplayedFromTheConsole(t *testing.T) {
	f := newFleet(t)
	b := newBrowser(t)
	ctx := ctxT(t, time.Minute)
	stop := f.startWorker([]string{"poison"}, bus.ConsumerConfig{MaxDeliver: 1})
	for _, id := range []string{"poison-1", "poison-2"} {
		res, err := f.client.Submit(ctx, "poison", req(id, "hello"))
		require.Error(t, err)
		require.Equal(t, bus.CodeInternal, res.Error.Code)
	}
	m := nats.NewMsg("llm.req.poison")
	m.Header.Set(bus.HeaderMsgID, "garbage-1")
	m.Data = []byte{0xc1, 0x00, 0xff}
	_, err := f.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		s, err := f.js.Stream(ctx, bus.StreamDLQ)
		return err == nil && s.CachedInfo().State.Msgs == 3
	}, 10*time.Second, 20*time.Millisecond)
	stop()
	f.startWorker([]string{"poison"}, bus.ConsumerConfig{}) // the operator's fix

	b.run(navigate(f.URL+"/console/dlq"), chromedp.WaitVisible(chromedp.CSS(`table.dlq`)))
	reasons := b.text(`table.reasons tbody`)
	require.Regexp(t, `internal\s+2`, reasons)
	require.Regexp(t, `invalid_request\s+1`, reasons)
	require.Contains(t, b.text(`table.dlq tbody`), "garbage-1")
	b.shot("dlq")

	// Inspect the undecodable one: its request cannot be decoded, shown
	// escaped.
	b.run(chromedp.Click(`//table[contains(@class,"dlq")]//tr[contains(., "garbage-1")]//td[2]/a`),
		chromedp.WaitVisible(chromedp.CSS(`dl.facts`)))
	require.Contains(t, b.text(`main`), "Cannot be decoded")

	// Select poison-1 and replay it, confirming on the next page.
	b.run(navigate(f.URL+"/console/dlq"), chromedp.WaitVisible(chromedp.CSS(`table.dlq`)),
		chromedp.Click(`//table[contains(@class,"dlq")]//tr[contains(., "poison-1")]//input[@type="checkbox"]`),
		chromedp.Click(chromedp.CSS(`button[value=replay]`)),
		chromedp.WaitVisible(chromedp.CSS(`form.actions button`)))
	require.Contains(t, b.text(`main`), "poison-1")
	require.NotContains(t, b.text(`main table`), "poison-2")
	b.shot("dlq-confirm")
	b.run(chromedp.Click(chromedp.CSS(`form.actions button`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	require.Equal(t, "Replayed 1 dead letter(s).", b.text(`p.flash`))

	require.Eventually(t, func() bool {
		r, err := f.client.StoredResult(ctx, "llm.res.poison-1")
		return err == nil && r != nil && r.Status == bus.StatusOK
	}, 15*time.Second, 50*time.Millisecond, "the replayed job has an ok result")
	b.run(navigate(f.URL+"/console/jobs/_/poison-1"), chromedp.WaitVisible(chromedp.CSS(`#job-status`)))
	require.Equal(t, "ok", b.text(`#job-status`))
	require.Contains(t, b.text(`main`), "replayed")

	b.run(navigate(f.URL+"/console/dlq"), chromedp.WaitVisible(chromedp.CSS(`table.dlq`)))
	row := b.text(`//table[contains(@class,"dlq")]//tr[contains(., "poison-1")]`)
	require.Contains(t, row, "replayed")
	require.Contains(t, row, "console: local")
	require.Contains(t, b.text(`main`), "1 replayed")
	b.shot("dlq-replayed")
	require.Contains(t, f.logs.String(), `"action":"dlq replay"`, "the action is logged")
	require.Contains(t, f.logs.String(), `"by":"local (no API keys configured)"`)
}

// TestTenantKeySeesOnlyItsOwnJobs: a tenant's key sees its own jobs, read
// only; another tenant's jobs and the anonymous tenant's are neither
// listed nor reachable by URL, and the admin pages are refused.
func TestTenantKeySeesOnlyItsOwnJobs(t *testing.T) {
	f := newFleet(t)
	b := newBrowser(t)
	ctx := ctxT(t, time.Minute)
	admin := f.createKey("", "ops", true)
	acme := f.createKey("acme", "acme-app", false)
	globex := f.createKey("globex", "globex-app", false)
	submit := func(key, id string) {
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/v1/jobs", strings.NewReader(`{"model":"demo","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Idempotency-Key", id)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	submit(acme, "acme-1")
	submit(acme, "acme-2")
	submit(globex, "globex-1")
	_, err := f.client.Submit(ctx, "demo", req("anon-1", "hi"))
	require.NoError(t, err)

	b.login(f.URL, acme)
	require.Contains(t, b.text(`header .who`), "tenant acme · read-only")
	b.run(navigate(f.URL+"/console/jobs"), chromedp.WaitVisible(chromedp.CSS(`table.jobs`)))
	jobs := b.text(`table.jobs tbody`)
	require.Contains(t, jobs, "job_acme-1")
	require.Contains(t, jobs, "job_acme-2")
	require.NotContains(t, jobs, "globex")
	require.NotContains(t, jobs, "anon-1")
	b.shot("tenant-jobs")

	// Another tenant's job by URL, even naming it: not found.
	b.run(navigate(f.URL+"/console/jobs/globex/job_globex-1"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	require.Contains(t, b.text(`main`), "No such job")
	b.run(navigate(f.URL+"/console/jobs/_/anon-1"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	require.Contains(t, b.text(`main`), "No such job")
	b.run(navigate(f.URL+"/console/jobs?tenant=globex"), chromedp.WaitVisible(chromedp.CSS(`table.jobs`)))
	require.NotContains(t, b.text(`table.jobs tbody`), "globex-1", "a tenant cannot widen its scope with ?tenant=")
	// Read-only: no admin page, no key list.
	b.run(navigate(f.URL+"/console/dlq/confirm?action=purge&all=1"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	require.Contains(t, b.text(`main`), "needs an admin key")
	b.run(navigate(f.URL+"/console/tenants"), chromedp.WaitVisible(chromedp.CSS(`main`)))
	require.NotContains(t, b.text(`main`), "API keys")
	require.NotContains(t, b.text(`main`), "globex")

	// The admin sees every tenant's.
	b2 := newBrowser(t)
	b2.login(f.URL, admin)
	b2.run(navigate(f.URL+"/console/jobs"), chromedp.WaitVisible(chromedp.CSS(`table.jobs`)))
	all := b2.text(`table.jobs tbody`)
	for _, id := range []string{"job_acme-1", "job_globex-1", "anon-1"} {
		require.Contains(t, all, id)
	}
}

// TestKeyCreatedInTheConsoleWorks: an admin creates a tenant's key in the
// console (through the confirmation page); the key, shown once, works for
// an API call, and stops working once revoked in the console.
func TestKeyCreatedInTheConsoleWorks(t *testing.T) {
	f := newFleet(t)
	b := newBrowser(t)
	admin := f.createKey("", "ops", true)
	b.login(f.URL, admin)
	b.run(navigate(f.URL+"/console/tenants"), chromedp.WaitVisible(chromedp.CSS(`#new-key`)),
		chromedp.SendKeys(chromedp.CSS(`#new-key input[name=tenant]`), "acme"),
		chromedp.SendKeys(chromedp.CSS(`#new-key input[name=name]`), "ci"),
		chromedp.Click(chromedp.CSS(`#new-key button`)),
		chromedp.WaitVisible(chromedp.CSS(`form.actions button`)))
	require.Contains(t, b.text(`p.question`), `Create a key for acme, named "ci"`)
	b.run(chromedp.Click(chromedp.CSS(`form.actions button`)), chromedp.WaitVisible(chromedp.CSS(`#new-key-value`)))
	key := get(b, chromedp.Value(chromedp.CSS(`#new-key-value`)))
	require.True(t, strings.HasPrefix(key, "sy-"), key)
	b.shot("key-created")

	require.Eventually(t, func() bool { return f.status("/v1/models", key) == http.StatusOK }, 10*time.Second, 20*time.Millisecond,
		"the new key works for an API call")
	require.Contains(t, f.logs.String(), `"action":"key create"`)

	// The tenants page shows acme's spend against its budget (the counters
	// the workers charge), lists the key (never the key itself); revoke it
	// there.
	bud, err := tenant.New(ctxT(t, 10*time.Second), f.js, budgets, 1, quiet())
	require.NoError(t, err)
	require.NoError(t, bud.Charge(ctxT(t, 10*time.Second), "acme", 120, 0.5))
	b.run(navigate(f.URL+"/console/tenants"), chromedp.WaitVisible(chromedp.CSS(`table.keys`)))
	spend := b.text(`//table[contains(@class,"tenants")]//tr[contains(., "acme")]`)
	require.Contains(t, spend, "120 / 1000")
	require.Contains(t, spend, "$0.5000 / $2.0000")
	keys := b.text(`table.keys tbody`)
	require.Contains(t, keys, "ci")
	require.NotContains(t, keys, key)
	b.shot("tenants")
	b.run(chromedp.Click(`//table[contains(@class,"keys")]//tr[contains(., "ci")]//a[contains(., "Revoke")]`),
		chromedp.WaitVisible(chromedp.CSS(`form.actions button`)),
		chromedp.Click(chromedp.CSS(`form.actions button`)), chromedp.WaitVisible(chromedp.CSS(`p.flash`)))
	require.Contains(t, b.text(`p.flash`), "Revoked key")
	require.Eventually(t, func() bool { return f.status("/v1/models", key) == http.StatusUnauthorized }, 10*time.Second, 20*time.Millisecond)
}
