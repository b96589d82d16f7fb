package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A session is a cookie holding the key's hash and an expiry, signed with
// the gateways' shared session secret. The key itself is never stored;
// each request looks the hash up again, so a revoked key's session ends at
// once, on every gateway.
const sessionCookie = "switchyard_console"

func (c *Console) sign(secret []byte, payload string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) newSession(ctx context.Context, hash string) (string, error) {
	secret, err := c.be.SessionSecret(ctx)
	if err != nil {
		return "", err
	}
	payload := hash + "|" + strconv.FormatInt(c.cfg.Now().Add(c.cfg.SessionTTL).Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + c.sign(secret, payload), nil
}

// session returns the key hash of a valid session cookie.
func (c *Console) session(ctx context.Context, r *http.Request) (string, bool, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", false, nil
	}
	p64, sig, ok := strings.Cut(ck.Value, ".")
	if !ok {
		return "", false, nil
	}
	pb, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return "", false, nil
	}
	secret, err := c.be.SessionSecret(ctx)
	if err != nil {
		return "", false, err
	}
	payload := string(pb)
	if !hmac.Equal([]byte(sig), []byte(c.sign(secret, payload))) {
		return "", false, nil
	}
	hash, exp, ok := strings.Cut(payload, "|")
	until, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || c.cfg.Now().Unix() > until {
		return "", false, nil
	}
	return hash, true, nil
}

// presentedKey is an API key sent as the API takes it (scripts, curl).
func presentedKey(r *http.Request) string {
	if k := r.Header.Get("x-api-key"); k != "" {
		return k
	}
	if k, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	return ""
}

// errLogin means: send the browser to the login page.
var errLogin = errors.New("console: login required")

// errNotLocal refuses the keyless console to a request that is not from
// this machine's loopback, by a loopback name.
var errNotLocal = errors.New("console: no API key exists, so the console is open to this machine only; create an admin key (submit keys create --admin) to use it from elsewhere")

// identify resolves a request's identity.
func (c *Console) identify(r *http.Request) (*Identity, error) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	required, err := c.be.KeysRequired(ctx)
	if err != nil {
		return nil, err
	}
	if !required {
		if !loopback(r) {
			return nil, errNotLocal
		}
		return &Identity{Admin: true, Local: true}, nil
	}
	if k := presentedKey(r); k != "" {
		id, _, ok, err := c.be.Authenticate(ctx, k)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errLogin
		}
		return &id, nil
	}
	hash, ok, err := c.session(ctx, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errLogin
	}
	id, ok, err := c.be.AuthenticateHash(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errLogin // revoked since the login
	}
	return &id, nil
}

// loopback reports whether r comes from a loopback address and names a
// loopback host (a DNS-rebinding page names its own host).
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.Trim(name, "[]")
	if name == "localhost" {
		return true
	}
	hip := net.ParseIP(name)
	return hip != nil && hip.IsLoopback()
}

// crossOrigin refuses state-changing requests from other origins (Fetch
// metadata and Origin, see net/http.CrossOriginProtection).
var crossOrigin = http.NewCrossOriginProtection()

// authenticated runs h for an identified request; admin pages refuse
// everyone else. Unsafe methods must come from the console's own origin.
func (c *Console) authenticated(h func(http.ResponseWriter, *http.Request, *Identity), admin bool) http.Handler {
	return crossOrigin.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "same-origin")
		id, err := c.identify(r)
		switch {
		case errors.Is(err, errLogin):
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, "/console/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.fail(w, r, nil, http.StatusUnauthorized, "Log in again: your session ended or its key was revoked.")
			return
		case errors.Is(err, errNotLocal):
			c.fail(w, r, nil, http.StatusForbidden, err.Error())
			return
		case err != nil:
			c.fail(w, r, nil, http.StatusServiceUnavailable, fmt.Sprintf("The fleet cannot be reached: %v", err))
			return
		}
		if admin && !id.Admin {
			c.fail(w, r, id, http.StatusForbidden, "This needs an admin key: a tenant's key sees its own data, read-only.")
			return
		}
		h(w, r, id)
	}))
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", nil, map[string]any{"Next": safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if err := crossOrigin.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	key := strings.TrimSpace(r.PostFormValue("key"))
	next := safeNext(r.PostFormValue("next"))
	id, hash, ok, err := c.be.Authenticate(r.Context(), key)
	if err != nil {
		c.fail(w, r, nil, http.StatusServiceUnavailable, fmt.Sprintf("The keys cannot be read: %v", err))
		return
	}
	if !ok {
		c.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"Next": next, "Error": "That key is not known (or was revoked)."})
		return
	}
	v, err := c.newSession(r.Context(), hash)
	if err != nil {
		c.fail(w, r, nil, http.StatusServiceUnavailable, fmt.Sprintf("No session secret: %v", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/console/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(c.cfg.SessionTTL.Seconds())})
	c.audit(r, &id, "login")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if err := crossOrigin.Check(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console/", HttpOnly: true, MaxAge: -1})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect inside the console.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/console/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") {
		return "/console/"
	}
	return s
}
