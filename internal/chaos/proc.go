package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is a child process of the zikao binary (the API or a worker), its
// output appended to a log file. Like a service manager, it starts the
// process again a second after it exits by itself, and counts those exits;
// Kill and Stop end it on purpose.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	events  *eventLog

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	wanted     bool // it should be running
	selfExits  int  // exits nobody asked for
	starts     int  // times started (by Start or after a self exit)
	generation int
}

// Start starts the process.
func (p *proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = true
	return p.startLocked()
}

func (p *proc) startLocked() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open log of %s: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = p.env, logFile, logFile
	// A process group of its own: a Ctrl-C at the terminal reaches it
	// through the chaos command, which stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.generation++
	p.starts++
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go p.watch(cmd, logFile, exited)
	return nil
}

// watch waits for the process to exit; one that exits by itself is started
// again after a second.
func (p *proc) watch(cmd *exec.Cmd, logFile *os.File, exited chan struct{}) {
	err := cmd.Wait()
	logFile.Close()
	close(exited)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != cmd || !p.wanted {
		return // killed or stopped on purpose
	}
	p.selfExits++
	p.events.add("%s (pid %d) exited by itself: %v; starting it again in 1s", p.name, cmd.Process.Pid, err)
	gen := p.generation
	time.AfterFunc(time.Second, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.wanted && p.generation == gen {
			if err := p.startLocked(); err != nil {
				p.events.add("%s: %v", p.name, err)
			}
		}
	})
}

// Pid is the process id of the running process (0 when none).
func (p *proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill sends SIGKILL and waits until the process has gone.
func (p *proc) Kill() (pid int, err error) {
	return p.end(syscall.SIGKILL, 10*time.Second)
}

// Stop asks the process to stop (SIGTERM), then kills it after 15 seconds.
func (p *proc) Stop() {
	if _, err := p.end(syscall.SIGTERM, 15*time.Second); err != nil {
		_, _ = p.end(syscall.SIGKILL, 5*time.Second)
	}
}

func (p *proc) end(sig syscall.Signal, wait time.Duration) (int, error) {
	p.mu.Lock()
	p.wanted = false
	p.generation++ // cancels a pending restart
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return 0, nil
	}
	select {
	case <-exited:
		return cmd.Process.Pid, nil // already gone
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return cmd.Process.Pid, fmt.Errorf("signal %s: %w", p.name, err)
	}
	select {
	case <-exited:
		return cmd.Process.Pid, nil
	case <-time.After(wait):
		return cmd.Process.Pid, fmt.Errorf("%s (pid %d) still running %s after %s", p.name, cmd.Process.Pid, wait, sig)
	}
}

// Starts counts the times the process was started.
func (p *proc) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// SelfExits counts the exits nobody asked for.
func (p *proc) SelfExits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.selfExits
}
