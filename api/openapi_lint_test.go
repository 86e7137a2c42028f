package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The OpenAPI document passes the standard linters without a warning:
// Spectral with its spectral:oas rules and Redocly's recommended rules as
// errors (recommended-strict). Both run through npx at pinned versions,
// fetched from the npm registry the first time (about 20 s).
func TestOpenAPIDocumentLintsClean(t *testing.T) {
	if _, err := exec.LookPath("npx"); err != nil {
		t.Fatal("npx (Node.js) is needed to lint openapi.json: apt-get install nodejs npm")
	}
	doc, err := filepath.Abs("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spectral := filepath.Join(dir, ".spectral.yaml")
	redocly := filepath.Join(dir, "redocly.yaml")
	if err := os.WriteFile(spectral, []byte("extends: [\"spectral:oas\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(redocly, []byte("extends:\n  - recommended-strict\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--yes", "@stoplight/spectral-cli@6.16.3", "lint", "--ruleset", spectral, "--fail-severity", "hint", doc},
		{"--yes", "@redocly/cli@2.77.0", "lint", "--config", redocly, doc},
	} {
		cmd := exec.Command("npx", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("npx %s: %v\n%s", args[1], err, out)
		}
	}
}
