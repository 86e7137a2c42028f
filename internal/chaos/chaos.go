// Package chaos is a fault-injection run of the whole system on this
// machine (`zikao chaos`): it starts its own PostgreSQL, Temporal dev
// server (file persistence), Mailpit, diploma registry stand-in, identity
// verification service and SMS gateway stand-ins, API and two workers,
// drives registrations over HTTP through every path with clients
// that retry as real ones do, kills and restarts the parts meanwhile, and
// then checks that nothing was lost, applied twice or left inconsistent.
// Everything listens on 127.0.0.1; every run is bounded in count and time.
package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
)

// Options configure a run.
type Options struct {
	Registrations int    // how many registrations the clients drive (and a real person's after each annul-real-person one)
	Concurrency   int    // clients at a time
	Seed          uint64 // of every random choice; 0 picks one (printed)
	Dir           string // run folder (logs, clusters); "" makes a temporary one
	Binary        string // the zikao binary the API and workers run from
	Year, Sitting int    // the current sitting
	RegistryUser  string // the diploma registry's credentials
	RegistryKey   string
	IdentityUser  string // the identity verification service's credentials
	IdentityKey   string
	SMSKeyID      string // the SMS provider's access key (its stand-in's, the senders')
	SMSSecret     string
	Faults        FaultCounts
	StepTimeout   time.Duration // how long a client keeps retrying one step
	SettleTimeout time.Duration // how long to wait, after the drive, for rows and workflows to agree
	Timeout       time.Duration // the whole run, checks included
	Out           io.Writer     // the report; nil means os.Stdout
}

// DefaultOptions are the full run's: 200 registrations by 12 clients,
// 6 worker kills, 2 API kills, one Temporal and one PostgreSQL restart,
// two restarts of the identity service and two of the SMS gateway.
func DefaultOptions() Options {
	return Options{
		Registrations: 200, Concurrency: 12,
		RegistryUser: "zikao", RegistryKey: "dev-key",
		IdentityUser: "zikao", IdentityKey: "dev-key",
		SMSKeyID: "zikao", SMSSecret: "dev-secret",
		Faults:      FaultCounts{WorkerKills: 6, APIKills: 2, TemporalRestarts: 1, PostgresRestarts: 1, IdentityRestarts: 2, SMSRestarts: 2, S3Kills: 2},
		StepTimeout: 2 * time.Minute, SettleTimeout: 3 * time.Minute, Timeout: 30 * time.Minute,
	}
}

// Result is what a run found.
type Result struct {
	Seed       uint64
	Dir        string
	Duration   time.Duration
	Invariants []*Invariant
}

// Invariant is one property checked after the run.
type Invariant struct {
	Name    string
	Figures string
	Failed  []string // what broke it; empty when it held
}

// Failed lists the names of the invariants that did not hold.
func (r *Result) Failed() []string {
	var out []string
	for _, inv := range r.Invariants {
		if len(inv.Failed) > 0 {
			out = append(out, inv.Name)
		}
	}
	return out
}

// checkReserve is the part of the timeout kept for settling and checking
// (besides SettleTimeout).
const checkReserve = 2 * time.Minute

// Run starts the stack, drives the registrations while injecting faults,
// checks the invariants and prints the report. Its error means the run
// itself could not be made (the stack did not start, …); broken invariants
// are in the Result.
func Run(ctx context.Context, o Options) (*Result, error) {
	start := time.Now()
	if err := o.complete(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	events, err := newEventLog(o.Out, filepath.Join(o.Dir, "chaos.log"), start)
	if err != nil {
		return nil, err
	}
	defer events.close()
	events.add("zikao chaos: seed %d, %d registrations, %d clients, run folder %s", o.Seed, o.Registrations, o.Concurrency, o.Dir)

	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	plans := makePlans(o.Registrations, rng, o.Year, o.Sitting)
	s, err := startStack(ctx, o, plans, events)
	if err != nil {
		return nil, fmt.Errorf("start the stack: %w (logs in %s)", err, o.Dir)
	}
	defer s.stop()

	st := newStats()
	d := &driver{api: newAPIClient(s.apiAddr, o.Concurrency, st, o.StepTimeout), stats: st, run: fmt.Sprintf("%x", o.Seed)}
	if err := d.logInStaff(ctx); err != nil {
		return nil, err
	}
	driveStart := time.Now()
	runs, faults := driveWithFaults(ctx, o, s, d, plans, rng, driveStart)
	saveRuns(filepath.Join(o.Dir, "clients.json"), runs, events)
	runs = flatten(runs) // with the real people's registrations

	invs, err := verify(ctx, o, s, runs, st, faults)
	if err != nil {
		return nil, err
	}
	res := &Result{Seed: o.Seed, Dir: o.Dir, Duration: time.Since(start), Invariants: invs}
	s.keepPG = len(res.Failed()) > 0
	_, smsOKs := s.sms.answersOK()
	printReport(events.writer(), reportData{opts: o, res: res, plans: plans, runs: runs, faults: faults, stats: st, procs: append(append([]*proc(nil), s.workers...), s.api, s.identity),
		driveStart: driveStart, smsOKs: smsOKs})
	return res, nil
}

// complete fills in defaults, picks a seed and makes the run folder.
func (o *Options) complete() error {
	def := DefaultOptions()
	if o.Registrations <= 0 {
		o.Registrations = def.Registrations
	}
	if o.Concurrency <= 0 {
		o.Concurrency = def.Concurrency
	}
	if o.RegistryUser == "" {
		o.RegistryUser, o.RegistryKey = def.RegistryUser, def.RegistryKey
	}
	if o.IdentityUser == "" {
		o.IdentityUser, o.IdentityKey = def.IdentityUser, def.IdentityKey
	}
	if o.SMSKeyID == "" {
		o.SMSKeyID, o.SMSSecret = def.SMSKeyID, def.SMSSecret
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = def.StepTimeout
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = def.SettleTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = def.Timeout
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.Binary == "" || o.Year == 0 || o.Sitting == 0 {
		return errors.New("chaos: Binary, Year and Sitting are required")
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "zikao-chaos-")
		if err != nil {
			return err
		}
		o.Dir = dir
	}
	return os.MkdirAll(o.Dir, 0o755)
}

// driveWithFaults runs the clients and, meanwhile, the fault injector; it
// returns when both are done. The drive stops checkReserve before the
// timeout, so that the checks have time.
func driveWithFaults(ctx context.Context, o Options, s *stack, d *driver, plans []*plan, rng *rand.Rand, driveStart time.Time) ([]*run, []*fault) {
	driveCtx, cancel := context.WithTimeout(ctx, max(o.Timeout-o.SettleTimeout-checkReserve, o.Timeout/3))
	defer cancel()
	total := 0
	for _, p := range plans {
		total += p.steps()
	}
	progress := func() float64 { return float64(d.stats.steps.Load()) / float64(total) }
	faultRNG, clientSeed := rand.New(rand.NewPCG(rng.Uint64(), 0xfa17)), rng.Uint64()
	driveDone := make(chan struct{})
	var faults []*fault
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		faults = s.injectFaults(driveCtx, o.Faults, faultRNG, progress, driveDone)
	}()
	runs := d.drive(driveCtx, plans, o.Concurrency, clientSeed)
	close(driveDone)
	s.events.add("drive finished in %s", time.Since(driveStart).Round(time.Second))
	wg.Wait()
	return runs, faults
}

// verify waits for the workflows to settle and checks every invariant.
func verify(ctx context.Context, o Options, s *stack, runs []*run, st *stats, faults []*fault) ([]*Invariant, error) {
	if s.temporal == nil {
		return nil, errors.New("no Temporal dev server is running (its restart failed): nothing to check against")
	}
	tc, err := client.Dial(client.Options{HostPort: s.temporal.FrontendHostPort(), Namespace: "default",
		Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return nil, fmt.Errorf("dial Temporal for the checks: %w", err)
	}
	defer tc.Close()
	if _, err := settle(ctx, s.db, tc, o.SettleTimeout, s.events); err != nil {
		return nil, err
	}
	snap, err := takeSnapshot(ctx, s.db, tc)
	if err != nil {
		return nil, err
	}
	mails, copies, err := checkMail(ctx, s.db, s.mailpit, o.SettleTimeout)
	if err != nil {
		return nil, err
	}
	outbox, err := readOutbox(ctx, s.db)
	if err != nil {
		return nil, err
	}
	texts, smsRows, received, err := checkSMS(ctx, s.db, s.sms, snap, outbox, o.SettleTimeout)
	if err != nil {
		return nil, err
	}
	stored, err := checkFiles(ctx, s)
	if err != nil {
		return nil, err
	}
	invs := append(checks(snap, runs, st, faults, o.Faults), mails, texts, smsSenders(s.workers), checkAnnulments(snap, runs, outbox, copies), stored)
	invs = append(invs, checkOnline(snap, runs, outbox, copies, st)...)
	return append(invs, checkAreas(snap, runs), checkAreaNotices(snap, outbox, copies, smsRows, received)), nil
}

// saveRuns writes the clients' logs (registration ids, keys and decisions;
// no personal data) to the run folder.
func saveRuns(path string, runs []*run, events *eventLog) {
	b, err := json.MarshalIndent(runs, "", "  ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		events.add("could not save the clients' logs: %v", err)
	}
}

// eventLog prints timestamped events of the run and keeps them in chaos.log.
type eventLog struct {
	mu    sync.Mutex
	start time.Time
	out   io.Writer
	file  *os.File
}

func newEventLog(out io.Writer, path string, start time.Time) (*eventLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open chaos log: %w", err)
	}
	return &eventLog{start: start, out: io.MultiWriter(out, f), file: f}, nil
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "[%7.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// writer writes to the output and chaos.log.
func (l *eventLog) writer() io.Writer { return l.out }

func (l *eventLog) close() { l.file.Close() }
