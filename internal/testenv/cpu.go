package testenv

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The benchmarks' CPU figures, read from the kernel: this process's, a
// PostgreSQL cluster's, other commands', the machine's.

// ProcessCPU is the CPU time (user and system) this process has used.
func ProcessCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineCPU is the CPU time every process of the machine has used (busy
// time of every core), and the time the hypervisor gave the cores to
// another machine (steal: this one waited): /proc/stat.
func MachineCPU(tb testing.TB) (busy, steal time.Duration) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		tb.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal guest guest_nice
	ticks := func(fields ...int) time.Duration {
		var sum int64
		for _, i := range fields {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			sum += n
		}
		return time.Duration(sum) * time.Second / 100 // USER_HZ
	}
	return ticks(1, 2, 3, 6, 7), ticks(8)
}

// CommandCPU is the CPU time the live processes named name (their comm)
// have used.
func CommandCPU(name string) time.Duration {
	return processesCPU(func(_, comm, _ string) (bool, bool) { return comm == name, false })
}

// PostgresCPU is the CPU time the PostgreSQL cluster in dir (the folder
// holding data/) has used: its postmaster and its live server processes,
// with the ended ones it reaped.
func PostgresCPU(tb testing.TB, dir string) time.Duration {
	postmaster := postmasterPID(tb, dir)
	return processesCPU(func(pid, _, ppid string) (bool, bool) {
		return pid == postmaster || ppid == postmaster, pid == postmaster // a server process's children are not the cluster's
	})
}

// BackendsCPU is the CPU time each live server process of the PostgreSQL
// cluster in dir has used, by process id.
func BackendsCPU(tb testing.TB, dir string) map[int]time.Duration {
	postmaster := postmasterPID(tb, dir)
	out := map[int]time.Duration{}
	eachProcess(func(pid, _, ppid string, own, _ time.Duration) {
		if ppid == postmaster {
			n, _ := strconv.Atoi(pid)
			out[n] = own
		}
	})
	return out
}

func postmasterPID(tb testing.TB, dir string) string {
	pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		tb.Fatal(err)
	}
	postmaster, _, _ := strings.Cut(string(pidFile), "\n")
	return postmaster
}

// processesCPU sums the CPU time (user and system) of the live processes
// that count (by pid, comm and parent's pid), with their reaped children's
// where children says so.
func processesCPU(counts func(pid, comm, ppid string) (count, children bool)) time.Duration {
	var sum time.Duration
	eachProcess(func(pid, comm, ppid string, own, reaped time.Duration) {
		if count, children := counts(pid, comm, ppid); count {
			sum += own
			if children {
				sum += reaped
			}
		}
	})
	return sum
}

// eachProcess calls visit with every live process's id, comm, parent's id,
// CPU time (user and system), and its reaped children's.
func eachProcess(visit func(pid, comm, ppid string, own, reaped time.Duration)) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid … utime stime cutime cstime: fields 14–17.
		head, rest, _ := strings.Cut(string(raw), ") ")
		pid, comm, _ := strings.Cut(head, " (")
		f := strings.Fields(rest)
		if len(f) < 15 {
			continue
		}
		ticks := func(fields []string) time.Duration {
			var n int64
			for _, v := range fields {
				t, _ := strconv.ParseInt(v, 10, 64)
				n += t
			}
			return time.Duration(n) * time.Second / 100 // USER_HZ
		}
		visit(pid, comm, f[1], ticks(f[11:13]), ticks(f[13:15]))
	}
}

// PIDCPU is the CPU time the live process pid has used.
func PIDCPU(pid int) time.Duration {
	id := strconv.Itoa(pid)
	return processesCPU(func(p, _, _ string) (bool, bool) { return p == id, false })
}
