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
	go func() { _ = db.WaitUntilReachable(ctx, database, retryInterval) }()
	go func() { _ = waitForTemporal(ctx, tc) }()
}

// waitForTemporal asks Temporal's health every retryInterval until it
// answers or ctx ends, logging "waiting for Temporal" at the first failure
// and every minute after it.
func waitForTemporal(ctx context.Context, tc client.Client) error {
	var failedSince, lastLog time.Time
	for {
		one, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tc.CheckHealth(one, &client.CheckHealthRequest{})
		cancel()
		if err == nil {
			if !failedSince.IsZero() {
				slog.Info("Temporal reachable", "waited", time.Since(failedSince).Round(time.Second).String())
			}
			return nil
		}
		if failedSince.IsZero() {
			failedSince = time.Now()
		}
		if time.Since(lastLog) >= time.Minute {
			slog.Warn("waiting for Temporal", "error", err)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryInterval):
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
