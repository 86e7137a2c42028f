//go:build !production

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"zikao/internal/chaos"
	"zikao/internal/config"
)

func init() { commands["chaos"] = runChaos } // not in the production build

// runChaos runs the fault-injection run (internal/chaos): its own
// PostgreSQL, Temporal, Mailpit, registry, identity service and SMS
// gateway stand-ins, API and two workers on 127.0.0.1, registrations
// driven over HTTP while parts are killed and restarted, and the
// invariants checked afterwards. It fails when one does not hold.
func runChaos(ctx context.Context, cfg config.Config, args []string) error {
	o := chaos.DefaultOptions()
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.IntVar(&o.Registrations, "n", o.Registrations, "registrations to drive")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "clients at a time")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of every random choice (0: a new one, printed)")
	fs.StringVar(&o.Dir, "dir", "", "run folder for logs and data (default: a new temporary folder)")
	fs.IntVar(&o.Faults.WorkerKills, "worker-kills", o.Faults.WorkerKills, "worker SIGKILLs")
	fs.IntVar(&o.Faults.APIKills, "api-kills", o.Faults.APIKills, "API SIGKILLs")
	fs.IntVar(&o.Faults.TemporalRestarts, "temporal-restarts", o.Faults.TemporalRestarts, "Temporal dev server restarts")
	fs.IntVar(&o.Faults.PostgresRestarts, "postgres-restarts", o.Faults.PostgresRestarts, "PostgreSQL restarts")
	fs.IntVar(&o.Faults.IdentityRestarts, "identity-restarts", o.Faults.IdentityRestarts, "identity service stand-in restarts (SIGKILL, down 4–8 s)")
	fs.IntVar(&o.Faults.SMSRestarts, "sms-restarts", o.Faults.SMSRestarts, "SMS gateway stand-in restarts (down 4–8 s, same address and file)")
	fs.IntVar(&o.Faults.S3Kills, "s3-kills", o.Faults.S3Kills, "object store (SeaweedFS) SIGKILLs (down 4–8 s, same ports and data)")
	fs.DurationVar(&o.StepTimeout, "step-timeout", o.StepTimeout, "how long a client retries one step")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "the whole run, checks included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Registrations > 5000 || o.Concurrency > 64 {
		return fmt.Errorf("chaos: at most 5000 registrations and 64 clients")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary, o.Year, o.Sitting = exe, cfg.Year, cfg.Sitting
	o.RegistryUser, o.RegistryKey = cfg.DiplomaRegistryUser, cfg.DiplomaRegistryKey
	o.IdentityUser, o.IdentityKey = cfg.IdentityServiceUser, cfg.IdentityServiceKey
	o.SMSKeyID, o.SMSSecret = cfg.SMSAccessKeyID, cfg.SMSAccessSecret
	res, err := chaos.Run(ctx, o)
	if err != nil {
		return err
	}
	if failed := res.Failed(); len(failed) > 0 {
		return fmt.Errorf("chaos: %d invariant(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	return nil
}
