package api_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// The browser tests drive Debian's Chromium through the DevTools protocol
// (chromedp) against the test server, as a person would: fields are found
// by their label's text, buttons and links by their visible text.

// installCommand installs what the browser tests need on Debian.
const installCommand = "apt-get update && apt-get install -y chromium fonts-noto-cjk"

var (
	chromiumOnce sync.Once
	chromiumErr  error
)

// needChromium installs Chromium and the CJK fonts when they are missing
// (once per run; it takes root, as on the project's machines), or fails
// the test naming the command that does.
func needChromium(t *testing.T) {
	t.Helper()
	chromiumOnce.Do(func() { chromiumErr = installChromium() })
	if chromiumErr != nil {
		t.Fatalf("the browser tests need Chromium and CJK fonts: %v\ninstall them as root with: %s", chromiumErr, installCommand)
	}
}

func installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), "install ok installed")
}

func installChromium() error {
	if _, err := exec.LookPath("chromium"); err == nil && installed("fonts-noto-cjk") {
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("chromium or fonts-noto-cjk is not installed, and the tests do not run as root to install them")
	}
	fmt.Fprintln(os.Stderr, "browser tests: installing Debian's chromium and fonts-noto-cjk (once)…")
	for _, args := range [][]string{{"update"}, {"-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends", "chromium", "fonts-noto-cjk"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			tail := out.String()
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail)
		}
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		return fmt.Errorf("chromium is still not on PATH after apt-get: %w", err)
	}
	return nil
}

// browser is one person's browser (a Chromium of its own: its own cookies).
type browser struct {
	t    *testing.T
	ctx  context.Context
	who  string // for the screenshots' names
	last string // the last page's path

	checked int // the page states axe-core checked (browser_axe_test.go)
}

// Viewports: a desk screen and a phone.
const (
	deskWidth, deskHeight   = 1280, 900
	phoneWidth, phoneHeight = 390, 844
)

// newBrowser starts a headless Chromium with a window of w×h.
func newBrowser(t *testing.T, who string, w, h int) *browser {
	t.Helper()
	needChromium(t)
	needAxe(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(w, h))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a timeout
		t.Fatalf("start Chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, who: who}
	t.Cleanup(b.axeSummary)
	if w == phoneWidth {
		b.do(chromedp.EmulateViewport(int64(w), int64(h), chromedp.EmulateMobile))
	}
	// Dialogs (the confirmation of 撤销注册) are accepted, as a person would.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// step bounds one action.
const step = 30 * time.Second

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s on %s: %v", b.who, b.last, err)
	}
}

func run[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s on %s: %v", b.who, b.last, err)
	}
	return v
}

// open goes to a page of the site and returns the HTTP status.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	resp := run(b, chromedp.NavigateResponse(pageURL(path)))
	return b.navigated(resp)
}

// navigated notes a new page, saves its screenshot, checks it with
// axe-core and returns its status.
func (b *browser) navigated(resp *network.Response) int64 {
	b.t.Helper()
	loc := run(b, chromedp.Location())
	b.last = strings.TrimPrefix(loc, pageURL(""))
	b.screenshot()
	b.axe()
	if resp == nil {
		return 0
	}
	return resp.Status
}

// press presses the button with this text and waits for the next page; it
// returns the page's HTTP status.
func (b *browser) press(text string) int64 {
	b.t.Helper()
	return b.follow(fmt.Sprintf(`//button[normalize-space(.)=%s]`, xq(text)))
}

// pressHere presses the button with this text where the page itself
// refuses to send the form (its script): nothing is loaded.
func (b *browser) pressHere(text string) {
	b.t.Helper()
	b.do(chromedp.Click(fmt.Sprintf(`//button[normalize-space(.)=%s]`, xq(text)), chromedp.NodeVisible))
	b.last = strings.TrimPrefix(run(b, chromedp.Location()), pageURL(""))
	b.axe()
}

// click follows the link with this text.
func (b *browser) click(text string) int64 {
	b.t.Helper()
	return b.follow(fmt.Sprintf(`//a[normalize-space(.)=%s]`, xq(text)))
}

func (b *browser) follow(xpath string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(xpath, chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("%s on %s: %s: %v", b.who, b.last, xpath, err)
	}
	return b.navigated(resp)
}

// xq quotes a string for XPath.
func xq(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// labelled is the id of the input whose label's text begins with label.
func (b *browser) labelled(label string) string {
	b.t.Helper()
	attr := run(b, chromedp.AttributeValue(fmt.Sprintf(`//label[starts-with(normalize-space(.), %s)]`, xq(label)), "for"))
	if !attr.Exists || attr.Value == "" {
		b.t.Fatalf("%s on %s: the label %q names no input", b.who, b.last, label)
	}
	return attr.Value
}

// fill types a value into the input labelled so (a date is set as YYYY-MM-DD).
func (b *browser) fill(label, value string) {
	b.t.Helper()
	id := b.labelled(label)
	typ := run(b, chromedp.AttributeValue(chromedp.ID(id), "type")).Value
	if typ == "date" {
		b.do(chromedp.SetValue(chromedp.ID(id), value))
		return
	}
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).value = ""`, id)), // clear it
		chromedp.SendKeys(chromedp.ID(id), value))
}

// choose picks the option of the select labelled so whose text holds
// option (among those the page offers: not disabled).
func (b *browser) choose(label, option string) {
	b.t.Helper()
	id := b.labelled(label)
	value := run(b, chromedp.AttributeValue(
		fmt.Sprintf(`//select[@id=%s]//option[not(ancestor-or-self::*[@disabled])][contains(normalize-space(.), %s)]`, xq(id), xq(option)), "value"))
	if !value.Exists {
		b.t.Fatalf("%s on %s: %q has no option %q", b.who, b.last, label, option)
	}
	b.do(chromedp.SetValue(chromedp.ID(id), value.Value),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.getElementById(%q).dispatchEvent(new Event("change", {bubbles: true}))`, id)))
}

// tick checks the checkbox or radio button labelled so.
func (b *browser) tick(label string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.ID(b.labelled(label)), chromedp.NodeVisible))
}

// attach chooses a file for the file input labelled so.
func (b *browser) attach(label, file string) {
	b.t.Helper()
	abs, err := filepath.Abs(file)
	if err != nil {
		b.t.Fatal(err)
	}
	b.do(chromedp.SetUploadFiles(chromedp.ID(b.labelled(label)), []string{abs}))
}

// value is what the input labelled so holds.
func (b *browser) value(label string) string {
	b.t.Helper()
	return run(b, chromedp.Value(chromedp.ID(b.labelled(label))))
}

// fieldError is the message shown beside the input labelled so ("" for none).
func (b *browser) fieldError(label string) string {
	b.t.Helper()
	id := b.labelled(label)
	return run(b, chromedp.Evaluate[string](fmt.Sprintf(`(function(){
		var f = document.getElementById(%q).closest(".field");
		var e = f && f.querySelector(".field-error:not([hidden])");
		return e ? e.textContent.trim() : "";
	})()`, id)))
}

// text is the page's visible text.
func (b *browser) text() string {
	b.t.Helper()
	return run(b, chromedp.Evaluate[string](`document.body.innerText`))
}

// see fails the test unless the page shows every one of words.
func (b *browser) see(words ...string) {
	b.t.Helper()
	text := b.text()
	for _, w := range words {
		if !strings.Contains(text, w) {
			b.t.Fatalf("%s on %s: %q is not shown; the page says:\n%s", b.who, b.last, w, text)
		}
	}
}

// soon waits until the page shows word (its script at work).
func (b *browser) soon(word string) {
	b.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(b.text(), word); {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s on %s: %q never shown; the page says:\n%s", b.who, b.last, word, b.text())
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.screenshot()
	b.axe()
}

// until reloads the page until it shows word (work done in the background).
func (b *browser) until(path, word string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.open(path)
		if strings.Contains(b.text(), word) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s on %s: %q never shown; the page says:\n%s", b.who, b.last, word, b.text())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// signIn signs in on the 登录 page.
func (b *browser) signIn(login, password string) {
	b.t.Helper()
	b.open("/login")
	b.fill("登录名", login)
	b.fill("密码", password)
	if st := b.press("登录"); st != 200 {
		b.t.Fatalf("%s: signing in answered %d: %s", b.who, st, b.text())
	}
}

var shots atomic.Int64

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// screenshot saves a PNG of the whole page into $ZIKAO_SCREENSHOTS, if set.
func (b *browser) screenshot() {
	b.t.Helper()
	dir := os.Getenv("ZIKAO_SCREENSHOTS")
	if dir == "" {
		return
	}
	png := run(b, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path, _, _ := strings.Cut(b.last, "?")
	if path == "/" {
		path = "home"
	}
	name := fmt.Sprintf("%03d-%s-%s-%s.png", shots.Add(1), strings.TrimPrefix(b.t.Name(), "TestBrowser"), b.who,
		strings.Trim(unsafeName.ReplaceAllString(path, "_"), "_"))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}
