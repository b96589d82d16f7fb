package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

var funcs = template.FuncMap{
	"tenant":      tenantLabel,
	"tenantToken": tenantToken,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"ms": func(n int64) string {
		if n == 0 {
			return "-"
		}
		return (time.Duration(n) * time.Millisecond).String()
	},
	// msz is a duration that was measured: 0 is "0ms", not unknown.
	"msz": func(n int64) string { return (time.Duration(n) * time.Millisecond).String() },
	"dur": func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return d.Round(time.Millisecond).String()
	},
	"rate": func(v float64) string {
		if v == 0 {
			return "0"
		}
		if v < 10 {
			return strconv.FormatFloat(v, 'f', 1, 64)
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	},
	"pct": func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" },
	"usd": func(v float64) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf("$%.4f", v)
	},
	"frac": func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return math.Min(1, a/b)
	},
	"percent": func(a, b int) int {
		if b <= 0 {
			return 0
		}
		return min(100, 100*a/b)
	},
	"spark": spark,
	"list":  func(s ...string) []string { return s },
	"plus":  func(a, b int) int { return a + b },
	"minus": func(a, b int) int { return a - b },
	"oneline": func(s string, n int) string {
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > n {
			return s[:n-1] + "…"
		}
		return s
	},
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Add(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
}

func tenantLabel(t string) string {
	if t == "" {
		return "(anonymous)"
	}
	return t
}

// tenantToken is a tenant in a URL path: "_" for the anonymous tenant
// (tenant names start with [a-z0-9], so it is never one).
func tenantToken(t string) string {
	if t == "" {
		return "_"
	}
	return t
}

func tenantFromToken(tok string) string {
	if tok == "_" {
		return ""
	}
	return tok
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// spark draws a series as an inline SVG polyline (no script needed).
func spark(vals []float64) template.HTML {
	const w, h = 120.0, 24.0
	if len(vals) < 2 {
		return template.HTML(fmt.Sprintf(`<svg class="spark" width="%v" height="%v" aria-hidden="true"></svg>`, w, h))
	}
	top := 1.0
	for _, v := range vals {
		top = math.Max(top, v)
	}
	var pts strings.Builder
	for i, v := range vals {
		x := w * float64(i) / float64(len(vals)-1)
		y := h - 1 - (h-2)*v/top
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" width="%v" height="%v" viewBox="0 0 %v %v" aria-label="queue depth, last minutes, peak %v"><polyline points="%s"/></svg>`,
		w, h, w, h, top, strings.TrimSpace(pts.String())))
}

// parseTemplates builds one template set per page: the layout and the page.
func parseTemplates() (map[string]*template.Template, error) {
	pages, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, p := range pages {
		name := strings.TrimSuffix(path.Base(p), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", p)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// view is what every page's template gets.
type view struct {
	Title string
	Page  string
	ID    *Identity
	Now   time.Time
	Flash string
	Data  any
}

// render writes a page (the layout around the named template).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, id *Identity, data any) {
	t := c.tmpl[page]
	if t == nil {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	v := view{Title: page, Page: page, ID: id, Now: c.cfg.Now(), Flash: r.URL.Query().Get("done"), Data: data}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout.html", v); err != nil {
		c.log.Error("console: render", "page", page, "error", err)
		http.Error(w, "rendering failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fragment renders one named template of a page (for live updates).
func (c *Console) fragment(page, name string, id *Identity, data any) (string, error) {
	var b bytes.Buffer
	err := c.tmpl[page].ExecuteTemplate(&b, name, view{Page: page, ID: id, Now: c.cfg.Now(), Data: data})
	return b.String(), err
}

// fail renders an error page.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, id *Identity, status int, msg string) {
	c.render(w, r, status, "error", id, map[string]any{"Status": status, "Message": msg})
}
