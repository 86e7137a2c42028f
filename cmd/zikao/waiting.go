package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"

	"zikao/activities"
	"zikao/internal/config"
	"zikao/internal/db"
)

// How often the servers try PostgreSQL and Temporal while they are away.
const retryInterval = 2 * time.Second

// connectLazily prepares PostgreSQL's pool and a Temporal client without
// reaching either, so that the API and the worker start while they are away
// and connect once they answer; closeAll closes both.
func connectLazily(cfg config.Config) (database *sqlx.DB, tc client.Client, closeAll func(), err error) {
	if database, err = db.OpenLazy(cfg.DatabaseURL); err != nil {
		return nil, nil, nil, err
	}
	opts, err := cfg.TemporalClientOptions()
	if err == nil {
		opts.Logger = tlog.NewStructuredLogger(slog.Default())
		opts.MetricsHandler = sdkMetrics().handler // served by the worker's /metrics
		tc, err = client.NewLazyClient(opts)
	}
	if err != nil {
		database.Close()
		return nil, nil, nil, fmt.Errorf("client for Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return database, tc, func() { tc.Close(); database.Close() }, nil
}

// reportUntilReachable logs, in the background, while PostgreSQL or
// Temporal is away at start, and when each answers.
func reportUntilReachable(ctx context.Context, database *sqlx.DB, tc client.Client) {
	go func() { _ = waitFor(ctx, "PostgreSQL", retryInterval, pingDB(database)) }()
	go func() { _ = waitForTemporal(ctx, tc) }()
}

// waitForTemporal waits until Temporal answers its health check.
func waitForTemporal(ctx context.Context, tc client.Client) error {
	return waitFor(ctx, "Temporal", retryInterval, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	})
}

// pingDB checks PostgreSQL with a deadline of its own, so that a server
// that accepts connections but does not answer counts as away.
func pingDB(database *sqlx.DB) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return database.PingContext(ctx)
	}
}

// waitFor calls check every interval until it succeeds or ctx ends,
// logging "waiting for WHAT" at the first failure and every minute after it
// (the error names the address, never data), and "WHAT reachable" once it
// answers after a failure.
func waitFor(ctx context.Context, what string, interval time.Duration, check func(context.Context) error) error {
	var failedSince, lastLog time.Time
	for {
		err := check(ctx)
		if err == nil {
			if !failedSince.IsZero() {
				slog.Info(what+" reachable", "waited", time.Since(failedSince).Round(time.Second).String())
			}
			return nil
		}
		if failedSince.IsZero() {
			failedSince = time.Now()
		}
		if time.Since(lastLog) >= time.Minute {
			slog.Warn("waiting for "+what, "error", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// startWorker starts the worker newWorker makes for taskQueue once Temporal
// answers, and tries again with a new one (a worker's start cannot be
// retried) while the start fails, until ctx ends.
func startWorker(ctx context.Context, tc client.Client, newWorker workerFactory, taskQueue string, acts *activities.Activities) (sdkworker.Worker, error) {
	for {
		if err := waitForTemporal(ctx, tc); err != nil {
			return nil, err
		}
		w := newWorker(tc, taskQueue, acts)
		err := w.Start()
		if err == nil {
			return w, nil
		}
		w.Stop()
		slog.Warn("worker did not start; trying again", "task_queue", taskQueue, "error", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryInterval):
		}
	}
}

// workerFactory makes a worker, as worker.New does.
type workerFactory func(tc client.Client, taskQueue string, acts *activities.Activities) sdkworker.Worker
