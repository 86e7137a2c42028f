package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// faultKind names a kind of fault.
type faultKind string

const (
	faultWorker   faultKind = "worker SIGKILL"
	faultAPI      faultKind = "API SIGKILL"
	faultTemporal faultKind = "Temporal restart"
	faultPostgres faultKind = "PostgreSQL restart"
	faultIdentity faultKind = "identity service restart"
	faultSMS      faultKind = "SMS gateway restart"
	faultS3       faultKind = "S3 server SIGKILL"
)

var faultKinds = []faultKind{faultWorker, faultAPI, faultTemporal, faultPostgres, faultIdentity, faultSMS, faultS3}

// FaultCounts says how many faults of each kind a run injects.
type FaultCounts struct {
	WorkerKills      int // SIGKILL one of the two workers, start it again 1–2 s later
	APIKills         int // SIGKILL the API, start it again 1–2 s later
	TemporalRestarts int // stop the dev server, start it on the same port and file
	PostgresRestarts int // pg_ctl stop -m fast or immediate, start again 2–4 s later
	IdentityRestarts int // SIGKILL the identity service stand-in, start it again 4–8 s later
	SMSRestarts      int // stop the SMS gateway stand-in, start it again 4–8 s later on the same address and file
	S3Kills          int // SIGKILL the object store's server, start it again 4–8 s later on the same ports and data
}

func (c FaultCounts) of(k faultKind) int {
	return map[faultKind]int{faultWorker: c.WorkerKills, faultAPI: c.APIKills, faultTemporal: c.TemporalRestarts,
		faultPostgres: c.PostgresRestarts, faultIdentity: c.IdentityRestarts, faultSMS: c.SMSRestarts, faultS3: c.S3Kills}[k]
}

// fault is one injected fault.
type fault struct {
	Kind    faultKind
	Target  string
	At      time.Time // injected
	Back    time.Time // the part runs again
	Healthy time.Time // the API's /healthz answers 200 again
	Late    bool      // injected after every client had finished
	Err     error     // the fault could not be injected or undone
}

// schedule shuffles the faults and gives each a point of the drive's
// progress (share of steps done) at which it strikes: one in each of as
// many equal slices of 3–70 % (a fault stalls the drive, so the later ones
// still find work in progress).
func schedule(c FaultCounts, rng *rand.Rand) ([]faultKind, []float64) {
	var kinds []faultKind
	for _, k := range faultKinds {
		for i := 0; i < c.of(k); i++ {
			kinds = append(kinds, k)
		}
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	at := make([]float64, len(kinds))
	for i := range at {
		at[i] = 0.03 + 0.67*(float64(i)+rng.Float64())/float64(len(kinds))
	}
	return kinds, at
}

// injectFaults strikes each scheduled fault when the drive's progress
// reaches its point (plus up to a second), one at a time: it undoes the
// fault and waits for the API to be healthy before the next. Faults still
// due when the drive has finished strike at once, marked late.
func (s *stack) injectFaults(ctx context.Context, c FaultCounts, rng *rand.Rand, progress func() float64, driveDone <-chan struct{}) []*fault {
	kinds, points := schedule(c, rng)
	var faults []*fault
	for i, k := range kinds {
		late := waitForProgress(ctx, progress, points[i], driveDone)
		if ctx.Err() != nil {
			break
		}
		sleep(ctx, time.Duration(rng.IntN(1000))*time.Millisecond)
		select {
		case <-driveDone:
			late = true // the drive finished while the faults before struck
		default:
		}
		f := s.inject(ctx, k, rng)
		f.Late = late
		faults = append(faults, f)
		s.logFault(i+1, len(kinds), f)
		if f.Err != nil {
			break // the stack is not whole: striking again proves nothing
		}
		sleep(ctx, time.Second+time.Duration(rng.IntN(2000))*time.Millisecond)
	}
	return faults
}

// waitForProgress waits until progress reaches point; it reports whether
// the drive finished first.
func waitForProgress(ctx context.Context, progress func() float64, point float64, driveDone <-chan struct{}) (late bool) {
	for progress() < point {
		select {
		case <-ctx.Done():
			return false
		case <-driveDone:
			return true
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false
}

func (s *stack) inject(ctx context.Context, k faultKind, rng *rand.Rand) *fault {
	f := &fault{Kind: k, At: time.Now()}
	switch k {
	case faultWorker:
		f.Err = s.killAndRestart(ctx, s.workers[rng.IntN(len(s.workers))], f, rng)
	case faultAPI:
		f.Err = s.killAndRestart(ctx, s.api, f, rng)
	case faultTemporal:
		f.Target = "dev server, same port and file"
		f.Err = s.restartTemporal(ctx)
	case faultPostgres:
		f.Err = s.restartPostgres(ctx, f, rng)
	case faultIdentity:
		f.Err = s.restartIdentity(ctx, f, rng)
	case faultSMS:
		f.Err = s.restartSMS(ctx, f, rng)
	case faultS3:
		f.Err = s.restartS3(ctx, f, rng)
	}
	if f.Err != nil {
		return f
	}
	f.Back = time.Now()
	if f.Err = s.waitHealthy(ctx, 3*time.Minute); f.Err == nil {
		f.Healthy = time.Now()
	}
	return f
}

// killAndRestart SIGKILLs a process and starts it again after 1–2 s.
func (s *stack) killAndRestart(ctx context.Context, p *proc, f *fault, rng *rand.Rand) error {
	pid, err := p.Kill()
	f.Target = fmt.Sprintf("%s (pid %d)", p.name, pid)
	if err != nil {
		return err
	}
	sleep(ctx, time.Second+time.Duration(rng.IntN(1000))*time.Millisecond)
	return p.Start()
}

// restartPostgres stops PostgreSQL (fast or immediate) and starts it again
// after 2–4 s.
func (s *stack) restartPostgres(ctx context.Context, f *fault, rng *rand.Rand) error {
	mode := []string{"fast", "immediate"}[rng.IntN(2)]
	f.Target = "pg_ctl stop -m " + mode
	if err := s.stopPostgres(mode); err != nil {
		return err
	}
	sleep(ctx, 2*time.Second+time.Duration(rng.IntN(2000))*time.Millisecond)
	return s.startPostgresAgain(context.WithoutCancel(ctx))
}

// restartS3 SIGKILLs the object store's server (SeaweedFS), leaves it down
// 4–8 s (uploads meanwhile answer 503 and are sent again with their key,
// fetches answer 503), and starts it again on the same ports and data.
func (s *stack) restartS3(ctx context.Context, f *fault, rng *rand.Rand) error {
	down := 4*time.Second + time.Duration(rng.IntN(4000))*time.Millisecond
	f.Target = fmt.Sprintf("SeaweedFS on %s, down %s", s.s3.Endpoint(), down.Round(100*time.Millisecond))
	if err := s.s3.Kill(); err != nil {
		return err
	}
	sleep(ctx, down)
	return s.s3.Restart(context.WithoutCancel(ctx))
}

// restartIdentity SIGKILLs the identity service stand-in, leaves it down
// 4–8 s (tries meanwhile answer 503 verification_unavailable and are sent
// again), starts it again and waits until it takes connections.
func (s *stack) restartIdentity(ctx context.Context, f *fault, rng *rand.Rand) error {
	down := 4*time.Second + time.Duration(rng.IntN(4000))*time.Millisecond
	pid, err := s.identity.Kill()
	f.Target = fmt.Sprintf("%s (pid %d), down %s", s.identity.name, pid, down.Round(100*time.Millisecond))
	if err != nil {
		return err
	}
	sleep(ctx, down)
	if err := s.identity.Start(); err != nil {
		return err
	}
	return s.waitIdentity(context.WithoutCancel(ctx), time.Minute)
}

func (s *stack) logFault(i, n int, f *fault) {
	late := ""
	if f.Late {
		late = " (late: every client had finished)"
	}
	if f.Err != nil {
		s.events.add("fault %d/%d: %s %s FAILED: %v%s", i, n, f.Kind, f.Target, f.Err, late)
		return
	}
	s.events.add("fault %d/%d: %s %s; running again after %s, API healthy after %s%s", i, n, f.Kind, f.Target,
		f.Back.Sub(f.At).Round(100*time.Millisecond), f.Healthy.Sub(f.At).Round(100*time.Millisecond), late)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
