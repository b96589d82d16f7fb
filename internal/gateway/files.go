package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/pkg/bus"
)

// fileObject is OpenAI's file object.
type fileObject struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	ExpiresAt     *int64  `json:"expires_at"`
	StatusDetails *string `json:"status_details"`
}

// newID returns prefix and 24 random hex digits, OpenAI's id shape.
func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func fileName(tenant, id string) string { return tenantToken(tenant) + "/" + id }

func viewFile(info *jetstream.ObjectInfo) *fileObject {
	_, id, _ := strings.Cut(info.Name, "/")
	created, _ := strconv.ParseInt(info.Metadata["created_at"], 10, 64)
	return &fileObject{ID: id, Object: "file", Bytes: int64(info.Size), CreatedAt: created,
		Filename: info.Metadata["filename"], Purpose: info.Metadata["purpose"], Status: "processed"}
}

func fileNotFound(id string) *apiError {
	e := newError(bus.CodeInvalidRequest, "No such File object: %s", id)
	e.status, e.param = http.StatusNotFound, "id"
	return e
}

// putFile stores a file's bytes.
func (g *Gateway) putFile(ctx context.Context, tenant, id, filename, purpose string, body io.Reader) (*jetstream.ObjectInfo, error) {
	obs, err := g.store.files(ctx)
	if err != nil {
		return nil, err
	}
	return obs.Put(ctx, jetstream.ObjectMeta{Name: fileName(tenant, id), Metadata: map[string]string{
		"filename": filename, "purpose": purpose, "created_at": strconv.FormatInt(g.now().Unix(), 10),
	}}, body)
}

// uploadFile is POST /v1/files (multipart: purpose, file). The file is
// streamed into the Object Store, never held whole in memory.
func (g *Gateway) uploadFile(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	ctx := r.Context()
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(max(g.cfg.BodyTimeout, 10*time.Minute))); err == nil {
		defer rc.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxFileBytes+1<<20)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		writeOpenAIError(w, invalidParam("file", "", "Expected a multipart/form-data body with fields 'purpose' and 'file'."))
		return
	}
	mr, err := r.MultipartReader()
	if err != nil {
		writeOpenAIError(w, invalidParam("file", "", "Invalid multipart body: %v", err))
		return
	}
	var purpose string
	var info *jetstream.ObjectInfo
	fid := newID("file-")
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeOpenAIError(w, uploadError(err))
			return
		}
		switch p.FormName() {
		case "purpose":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			purpose = string(b)
		case "file":
			if info != nil {
				writeOpenAIError(w, invalidParam("file", "", "Only one file per upload."))
				return
			}
			if info, err = g.putFile(ctx, id.Tenant, fid, p.FileName(), "", io.LimitReader(p, g.cfg.MaxFileBytes+1)); err != nil {
				writeOpenAIError(w, uploadError(err))
				return
			}
		}
	}
	if info == nil {
		writeOpenAIError(w, invalidParam("file", "", "Missing the 'file' field."))
		return
	}
	obs, err := g.store.files(ctx)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	if purpose != "batch" || int64(info.Size) > g.cfg.MaxFileBytes {
		_ = obs.Delete(ctx, info.Name) // best effort
		if purpose != "batch" {
			writeOpenAIError(w, invalidParam("purpose", "", "'%s' is not supported; Switchyard accepts purpose 'batch'.", purpose))
		} else {
			writeOpenAIError(w, newError(bus.CodeTooLarge, "File larger than %d bytes.", g.cfg.MaxFileBytes))
		}
		return
	}
	info.Metadata["purpose"] = purpose
	if err := obs.UpdateMeta(ctx, info.Name, info.ObjectMeta); err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	writeJSON(w, http.StatusOK, viewFile(info))
}

func uploadError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return newError(bus.CodeTooLarge, "File larger than the gateway accepts.")
	}
	return busError(err)
}

// fileInfo returns a tenant's file, nil when it has none of that id.
func (g *Gateway) fileInfo(ctx context.Context, tenant, id string) (*jetstream.ObjectInfo, error) {
	if !validFileID(id) {
		return nil, nil
	}
	obs, err := g.store.files(ctx)
	if err != nil {
		return nil, err
	}
	info, err := obs.GetInfo(ctx, fileName(tenant, id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	return info, err
}

func validFileID(id string) bool {
	return strings.HasPrefix(id, "file-") && len(id) <= 100 && bus.ValidJobID(strings.ReplaceAll(id, "/", "_"))
}

func (g *Gateway) lookupFile(w http.ResponseWriter, r *http.Request) *jetstream.ObjectInfo {
	id := identityOf(r.Context())
	info, err := g.fileInfo(r.Context(), id.Tenant, r.PathValue("id"))
	if err != nil {
		writeOpenAIError(w, busError(err))
		return nil
	}
	if info == nil {
		writeOpenAIError(w, fileNotFound(r.PathValue("id")))
	}
	return info
}

func (g *Gateway) getFile(w http.ResponseWriter, r *http.Request) {
	if info := g.lookupFile(w, r); info != nil {
		writeJSON(w, http.StatusOK, viewFile(info))
	}
}

func (g *Gateway) fileContent(w http.ResponseWriter, r *http.Request) {
	info := g.lookupFile(w, r)
	if info == nil {
		return
	}
	obs, err := g.store.files(r.Context())
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	obj, err := obs.Get(r.Context(), info.Name)
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	defer obj.Close() //nolint:errcheck // read-only
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatUint(info.Size, 10))
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Minute))
	_, _ = io.Copy(w, obj) // the client is gone
}

func (g *Gateway) deleteFile(w http.ResponseWriter, r *http.Request) {
	info := g.lookupFile(w, r)
	if info == nil {
		return
	}
	obs, err := g.store.files(r.Context())
	if err == nil {
		err = obs.Delete(r.Context(), info.Name)
	}
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": viewFile(info).ID, "object": "file", "deleted": true})
}

func (g *Gateway) listFiles(w http.ResponseWriter, r *http.Request) {
	id := identityOf(r.Context())
	obs, err := g.store.files(r.Context())
	if err != nil {
		writeOpenAIError(w, busError(err))
		return
	}
	infos, err := obs.List(r.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		writeOpenAIError(w, busError(err))
		return
	}
	prefix := tenantToken(id.Tenant) + "/"
	purpose := r.URL.Query().Get("purpose")
	data := []*fileObject{}
	for _, info := range infos {
		if strings.HasPrefix(info.Name, prefix) && (purpose == "" || info.Metadata["purpose"] == purpose) {
			data = append(data, viewFile(info))
		}
	}
	slices.SortFunc(data, func(a, b *fileObject) int { return int(b.CreatedAt - a.CreatedAt) })
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
}
