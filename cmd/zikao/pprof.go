package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves Go's profiles under /debug/pprof/ (net/http/pprof),
// on a mux of its own: nothing else of the process is reachable there.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}

// servePprof serves the profiles on addr until ctx ends, when addr is set
// (ZIKAO_PPROF_ADDRESS); a failure to listen is logged.
func servePprof(ctx context.Context, addr, what string) {
	if addr == "" {
		return
	}
	if err := serve(ctx, addr, pprofHandler(), what+" profiles"); err != nil {
		slog.Error("profiles not served", "address", addr, "error", err)
	}
}
