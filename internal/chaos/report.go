package chaos

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// reportData is what the report is printed from.
type reportData struct {
	opts       Options
	res        *Result
	plans      []*plan
	runs       []*run
	faults     []*fault
	stats      *stats
	procs      []*proc
	driveStart time.Time
	smsOKs     []time.Time // the SMS gateway stand-in's answers OK
}

// maxDetails bounds the lines printed per broken invariant.
const maxDetails = 25

func printReport(w io.Writer, d reportData) {
	fmt.Fprintf(w, "\n==== zikao chaos report (seed %d) ====\n", d.res.Seed)
	printPaths(w, d.runs)
	printFaults(w, d)
	printClients(w, d)
	printProcesses(w, d.procs)
	failed := printInvariants(w, d.res.Invariants)
	fmt.Fprintf(w, "\ntotal time %s; run folder %s\n", d.res.Duration.Round(time.Second), d.res.Dir)
	if failed > 0 {
		fmt.Fprintf(w, "RESULT: %d invariant(s) FAILED (reproduce with -seed %d; the timing of faults varies between runs)\n", failed, d.res.Seed)
	} else {
		fmt.Fprintln(w, "RESULT: every invariant held")
	}
}

func printPaths(w io.Writer, runs []*run) {
	fmt.Fprintf(w, "\nRegistrations per path                                                                         driven  reached target\n")
	total, done := 0, 0
	for _, p := range allPaths() {
		n, ok := 0, 0
		for _, r := range runs {
			if r.Plan.Path.Name == p.Name {
				n++
				if r.Done {
					ok++
				}
			}
		}
		total, done = total+n, done+ok
		fmt.Fprintf(w, "  %-22s %s %4d  %4d (%s)\n", p.Name, pad(p.Label, 62), n, ok, p.Target)
	}
	fmt.Fprintf(w, "  %s %4d  %4d\n", pad("all", 85), total, done)
}

// pad pads s with spaces to n terminal columns (a CJK character takes two).
func pad(s string, n int) string {
	cols := 0
	for _, r := range s {
		cols++
		if r >= 0x2E80 {
			cols++
		}
	}
	return s + strings.Repeat(" ", max(n-cols, 0))
}

func printFaults(w io.Writer, d reportData) {
	fmt.Fprintf(w, "\nFaults (time from the drive's start; recovery: until the first submission or decision sent after the fault succeeded — for the identity service, the first online try; for the SMS gateway, the first SMS it accepted)\n")
	byKind := map[faultKind][]time.Duration{}
	for i, f := range d.faults {
		rec, ok := recovery(f, d.stats)
		if f.Kind == faultSMS {
			rec, ok = firstAfter(d.smsOKs, f.At)
		}
		recS := "no success after it"
		if ok {
			recS = rec.Round(10 * time.Millisecond).String()
			byKind[f.Kind] = append(byKind[f.Kind], rec)
		}
		state := fmt.Sprintf("back after %s, healthy after %s", since(f.At, f.Back), since(f.At, f.Healthy))
		if f.Err != nil {
			state = "FAILED: " + f.Err.Error()
		}
		late := ""
		if f.Late {
			late = " [late: after the drive]"
		}
		fmt.Fprintf(w, "  %2d  +%6.1fs  %-24s %-40s %s; recovery %s%s\n", i+1, f.At.Sub(d.driveStart).Seconds(), f.Kind, f.Target, state, recS, late)
	}
	fmt.Fprintln(w, "  per kind:")
	for _, k := range faultKinds {
		n := 0
		for _, f := range d.faults {
			if f.Kind == k {
				n++
			}
		}
		fmt.Fprintf(w, "    %-24s %d injected (planned %d); recovery %s\n", k, n, d.opts.Faults.of(k), spread(byKind[k]))
	}
}

// recovery is the time from a fault until the first submission or decision
// sent after it was answered with success; for a restart of the identity
// service, the first online try (the only requests that need it).
func recovery(f *fault, st *stats) (time.Duration, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	best, found := time.Duration(0), false
	for _, ok := range st.oks {
		if ok.sent.Before(f.At) || (f.Kind == faultIdentity && !strings.HasSuffix(ok.path, "/online-verification")) {
			continue
		}
		if d := ok.done.Sub(f.At); !found || d < best {
			best, found = d, true
		}
	}
	return best, found
}

// firstAfter is the time from t to the first of times after it.
func firstAfter(times []time.Time, t time.Time) (time.Duration, bool) {
	best, found := time.Duration(0), false
	for _, at := range times {
		if d := at.Sub(t); d > 0 && (!found || d < best) {
			best, found = d, true
		}
	}
	return best, found
}

func since(from, to time.Time) string {
	if to.IsZero() {
		return "-"
	}
	return to.Sub(from).Round(100 * time.Millisecond).String()
}

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	r := func(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }
	return fmt.Sprintf("min %s, median %s, max %s", r(ds[0]), r(ds[len(ds)/2]), r(ds[len(ds)-1]))
}

func printClients(w io.Writer, d reportData) {
	st := d.stats
	st.mu.Lock()
	defer st.mu.Unlock()
	decisions, inferred, multi := 0, 0, 0
	for _, r := range d.runs {
		for _, dec := range r.Decisions {
			decisions++
			if dec.Inferred {
				inferred++
			}
			if dec.Attempts > 1 {
				multi++
			}
		}
	}
	retries := 0
	var reasons []string
	for reason, n := range st.retries {
		retries += n
		reasons = append(reasons, fmt.Sprintf("%s %d", reason, n))
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "\nClients: %d HTTP requests, %d submissions and decisions succeeded; %d decisions logged, %d of them needed more than one attempt, %d inferred from a 409 after a lost answer\n",
		st.requests, len(st.oks), decisions, multi, inferred)
	fmt.Fprintf(w, "  retries with the same Idempotency-Key (and poll retries): %d (%s)\n", retries, orNone(strings.Join(reasons, ", ")))
	var stopped []string
	for _, r := range d.runs {
		if !r.Done {
			stopped = append(stopped, fmt.Sprintf("%s %s: %s", r.Plan, orNone(r.ID), r.Error))
		}
	}
	fmt.Fprintf(w, "  clients that could not finish their path: %d\n", len(stopped))
	printDetails(w, stopped)
}

func printProcesses(w io.Writer, procs []*proc) {
	var parts []string
	for _, p := range procs {
		if n := p.SelfExits(); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p.name, n))
		}
	}
	if len(parts) == 0 {
		fmt.Fprintln(w, "\nProcesses: none exited by itself")
		return
	}
	fmt.Fprintf(w, "\nProcesses: WARNING, exited by themselves (and were started again): %s (see their logs)\n", strings.Join(parts, ", "))
}

func printInvariants(w io.Writer, invs []*Invariant) int {
	fmt.Fprintln(w, "\nInvariants")
	failed := 0
	for _, inv := range invs {
		mark := "ok    "
		if len(inv.Failed) > 0 {
			mark = "FAILED"
			failed++
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", mark, inv.Name, inv.Figures)
		printDetails(w, inv.Failed)
	}
	return failed
}

func printDetails(w io.Writer, lines []string) {
	for i, l := range lines {
		if i == maxDetails {
			fmt.Fprintf(w, "      … and %d more\n", len(lines)-maxDetails)
			return
		}
		fmt.Fprintf(w, "    - %s\n", l)
	}
}
