package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Every page the browser tests visit is checked by axe-core, the engine of
// most accessibility checkers, against WCAG 2.0 and 2.1, levels A and AA: a
// serious or critical violation fails the test. axe's script is fetched from
// the npm registry at a pinned version, once, into the user's cache
// directory, and injected through the DevTools protocol (Runtime.evaluate),
// which the pages' Content-Security-Policy does not govern.

// axeVersion is the pinned axe-core.
const axeVersion = "4.14.1"

// axeTags are the rules run: WCAG 2.0 and 2.1, A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axeFetchCommand is what fetches axe-core by hand.
func axeFetchCommand(dir string) string {
	return fmt.Sprintf("npm pack axe-core@%s --pack-destination %s && tar -xzf %s/axe-core-%s.tgz -O package/axe.min.js > %s",
		axeVersion, dir, dir, axeVersion, filepath.Join(dir, "axe.min.js"))
}

func axeDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "zikao-axe-core-"+axeVersion)
}

// needAxe loads axe-core's script (axe.min.js) into axeSource, fetched the
// first time, or fails the test naming the command that fetches it.
func needAxe(t *testing.T) {
	t.Helper()
	axeOnce.Do(func() { axeSource, axeErr = loadAxe(axeDir()) })
	if axeErr != nil {
		t.Fatalf("the browser tests check every page with axe-core %s from the npm registry: %v\nfetch it with: %s",
			axeVersion, axeErr, axeFetchCommand(axeDir()))
	}
}

// loadAxe reads dir/axe.min.js, fetching it first with npm pack when it
// is not there (npm checks the tarball's integrity against the registry).
func loadAxe(dir string) (string, error) {
	file := filepath.Join(dir, "axe.min.js")
	header := "/*! axe v" + axeVersion + "\n"
	if src, err := os.ReadFile(file); err == nil && strings.HasPrefix(string(src), header) {
		return string(src), nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errors.New("npm (Node.js) is not on PATH: apt-get install nodejs npm")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(dir, "pack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(os.Stderr, "browser tests: fetching axe-core %s from the npm registry (once)…\n", axeVersion)
	cmd := exec.Command("npm", "pack", "axe-core@"+axeVersion, "--pack-destination", tmp, "--silent")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "NO_UPDATE_NOTIFIER=1", "NPM_CONFIG_UPDATE_NOTIFIER=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm pack axe-core@%s: %w\n%s", axeVersion, err, out)
	}
	src, err := untar(filepath.Join(tmp, "axe-core-"+axeVersion+".tgz"), "package/axe.min.js")
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(src, []byte(header)) {
		return "", fmt.Errorf("the axe.min.js of axe-core@%s does not begin with %q", axeVersion, strings.TrimSpace(header))
	}
	part := filepath.Join(tmp, "axe.min.js")
	if err := os.WriteFile(part, src, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(part, file); err != nil {
		return "", err
	}
	return string(src), nil
}

// untar returns the file name held in the gzipped tarball tgz.
func untar(tgz, name string) ([]byte, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s holds no %s", tgz, name)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tgz, err)
		}
		if h.Name == name {
			return io.ReadAll(tr)
		}
	}
}

// axeViolation is one rule broken on a page, as axeRun reports it.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	HelpURL string   `json:"helpUrl"`
	Nodes   int      `json:"nodes"`
	Targets []string `json:"targets"` // the first few elements' selectors
}

// axeRun runs axe on the page (not in its frames: the report's frame holds a
// PDF or an image) and returns the violations.
var axeRun = fmt.Sprintf(`(async function () {
	const r = await axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"], iframes: false});
	return r.violations.map(function (v) {
		return {id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl, nodes: v.nodes.length,
			targets: v.nodes.slice(0, 3).map(function (n) { return [].concat(n.target).flat(Infinity).join(" ") })};
	});
})()`, mustJSON(axeTags))

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Counts of the run, for its log: page states checked, the time it took,
// and the pages (paths with their ids as :id) checked.
var (
	axeChecks, axeNanos atomic.Int64
	axePages            sync.Map
	axeIDs              = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|[0-9]{4,}`)
)

// axe checks the page as it is now with axe-core, and fails the test (it
// goes on) on each serious or critical violation; the minor and moderate
// ones are logged. Every state of a page the tests show is checked: each
// page load and each change of a page the tests wait for (soon, pressHere).
func (b *browser) axe() {
	b.t.Helper()
	start := time.Now()
	type state struct {
		HTML   bool `json:"html"`
		Loaded bool `json:"loaded"`
	}
	st := run(b, chromedp.Evaluate[state](`({html: document.contentType === "text/html", loaded: typeof window.axe === "object" && typeof window.axe.run === "function"})`))
	if !st.HTML {
		return
	}
	if !st.Loaded {
		b.do(chromedp.Evaluate[chromedp.Void](axeSource))
	}
	found := run(b, chromedp.Evaluate[[]axeViolation](axeRun, chromedp.EvalAwaitPromise))
	b.checked++
	axeChecks.Add(1)
	path, _, _ := strings.Cut(b.last, "?")
	axePages.Store(axeIDs.ReplaceAllString(path, ":id"), true)
	axeNanos.Add(int64(time.Since(start)))
	for _, v := range found {
		msg := fmt.Sprintf("%s on %s: axe-core %s: %s (%s): %s; %d element(s), e.g. %s — %s",
			b.who, b.last, axeVersion, v.ID, v.Impact, v.Help, v.Nodes, strings.Join(v.Targets, " | "), v.HelpURL)
		switch v.Impact {
		case "serious", "critical":
			b.t.Error(msg)
		default:
			b.t.Log(msg)
		}
	}
}

// axeSummary logs how many page states axe-core checked in this browser,
// and in the whole run so far.
func (b *browser) axeSummary() {
	pages := 0
	axePages.Range(func(any, any) bool { pages++; return true })
	b.t.Logf("axe-core %s checked %d page states of %s (in this run so far: %d states of %d pages, in %s)",
		axeVersion, b.checked, b.who, axeChecks.Load(), pages, time.Duration(axeNanos.Load()).Round(time.Millisecond))
}
