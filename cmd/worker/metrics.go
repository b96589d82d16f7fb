package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func registerMetrics(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.Handler())
}
