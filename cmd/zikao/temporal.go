package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"zikao/internal/config"
	"zikao/internal/temporalsetup"
	"zikao/workflows"
)

// runTemporalCmd runs `zikao temporal setup`: it creates the namespace when it
// is missing (not with Temporal Cloud, where the console does), registers the
// search attributes, checks that the server accepts Workflow Updates and
// creates (or updates) the retention schedules, printing what it found and
// did. Running it again changes nothing.
func runTemporalCmd(ctx context.Context, cfg config.Config, args []string) error {
	const use = "usage: zikao temporal setup [-retention 720h]"
	if len(args) == 0 || args[0] != "setup" {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("temporal setup", flag.ContinueOnError)
	def := temporalsetup.DefaultRetention
	if v := os.Getenv("ZIKAO_TEMPORAL_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("ZIKAO_TEMPORAL_RETENTION: " + err.Error())
		}
		def = d
	}
	retention := fs.Duration("retention", def, "retention of closed workflows in a namespace it creates (or ZIKAO_TEMPORAL_RETENTION)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	return setupTemporal(ctx, cfg, *retention)
}

// setupTemporal runs the setup with the settings of the other commands.
func setupTemporal(ctx context.Context, cfg config.Config, retention time.Duration) error {
	opts, err := cfg.TemporalClientOptions()
	if err != nil {
		return err
	}
	opts.Logger = tlog.NewStructuredLogger(slog.Default())
	_, err = temporalsetup.Dial(ctx, opts, temporalsetup.Options{
		Namespace:        cfg.TemporalNamespace,
		Retention:        retention,
		SearchAttributes: workflows.SearchAttributes(),
		Cloud:            cfg.TemporalAPIKey != "",
		Out:              os.Stdout,
	})
	if err != nil {
		return err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", opts.HostPort, err)
	}
	defer c.Close()
	var schedules []client.ScheduleOptions
	for _, s := range workflows.RetentionSchedules() {
		schedules = append(schedules, s.Options(cfg.TaskQueue))
	}
	_, err = temporalsetup.EnsureSchedules(ctx, c, os.Stdout, schedules...)
	return err
}
