// Package config reads the settings of the API server and the worker from
// environment variables. Every setting has a default that works with the
// stack started by `go run ./cmd/zikao dev`.
package config

import (
	"crypto/tls"
	"fmt"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
)

// Config holds every setting of the API server and the worker.
type Config struct {
	DatabaseURL string // ZIKAO_DATABASE_URL

	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	TaskQueue         string // ZIKAO_TASK_QUEUE
	TemporalAPIKey    string // TEMPORAL_API_KEY (Temporal Cloud)
	TemporalTLS       bool   // TEMPORAL_TLS: use TLS without client certificates
	TemporalTLSCert   string // TEMPORAL_TLS_CERT: client certificate (mTLS), PEM file
	TemporalTLSKey    string // TEMPORAL_TLS_KEY: client key (mTLS), PEM file
	// ZIKAO_TEMPORAL_GZIP: compress requests to Temporal with gzip (the SDK's
	// default). Off by default: zikao's payloads are ids of a few hundred
	// bytes, and a gzip writer per request cost the API and worker about 5 %
	// of their CPU under load.
	TemporalGzip bool

	ListenAddress  string   // ZIKAO_LISTEN_ADDRESS
	TrustedProxies []string // ZIKAO_TRUSTED_PROXIES: comma-separated; empty trusts none
	SessionTTL     time.Duration

	Year    int // ZIKAO_YEAR: the current sitting's year
	Sitting int // ZIKAO_SITTING: 1 (April) or 2 (October)

	DiplomaRegistryURL     string        // ZIKAO_DIPLOMA_REGISTRY_URL
	DiplomaRegistryUser    string        // ZIKAO_DIPLOMA_REGISTRY_USER
	DiplomaRegistryKey     string        // ZIKAO_DIPLOMA_REGISTRY_KEY
	DiplomaRegistryTimeout time.Duration // ZIKAO_DIPLOMA_REGISTRY_TIMEOUT

	IdentityServiceURL     string        // ZIKAO_IDENTITY_SERVICE_URL: the citizen identity verification service
	IdentityServiceUser    string        // ZIKAO_IDENTITY_SERVICE_USER
	IdentityServiceKey     string        // ZIKAO_IDENTITY_SERVICE_KEY
	IdentityServiceTimeout time.Duration // ZIKAO_IDENTITY_SERVICE_TIMEOUT: of each attempt

	SMTPAddress  string // ZIKAO_SMTP_ADDRESS: host:port of the SMTP server
	SMTPUser     string // ZIKAO_SMTP_USER: empty sends without authentication
	SMTPPassword string // ZIKAO_SMTP_PASSWORD
	SMTPTLS      string // ZIKAO_SMTP_TLS: off, starttls or tls
	MailFrom     string // ZIKAO_MAIL_FROM: the sender's address, optionally with a name
	MailEnabled  bool   // ZIKAO_MAIL_ENABLED: false writes the outbox but sends nothing

	SMSURL          string        // ZIKAO_SMS_URL: the SMS provider's API
	SMSAccessKeyID  string        // ZIKAO_SMS_ACCESS_KEY_ID
	SMSAccessSecret string        // ZIKAO_SMS_ACCESS_KEY_SECRET
	SMSSignName     string        // ZIKAO_SMS_SIGN_NAME: the signature registered with the provider
	SMSTimeout      time.Duration // ZIKAO_SMS_TIMEOUT: of one call to the provider
	SMSEnabled      bool          // ZIKAO_SMS_ENABLED: false writes the SMS outbox but sends nothing
	// SMS limits (api.md's defaults): ZIKAO_SMS_PER_ADDRESS_HOUR (codes and
	// ticket look-ups from one address), ZIKAO_SMS_PER_PHONE_DAY (codes),
	// ZIKAO_TICKET_LOOKUPS_PER_ID_DAY.
	SMSPerAddressHour, SMSPerPhoneDay, TicketLookupsPerIDDay int

	ReviewOverdueAfter   time.Duration // ZIKAO_REVIEW_OVERDUE_AFTER: a review waiting longer is overdue (metrics)
	WorkerMetricsAddress string        // ZIKAO_WORKER_METRICS_ADDRESS: the worker's /metrics
	// PprofAddress (ZIKAO_PPROF_ADDRESS): where the API or worker serves Go's
	// profiles (/debug/pprof/); empty serves none. For profiling on a
	// loopback address, never on a public one.
	PprofAddress string

	// The object store of files (any S3-compatible store).
	S3Endpoint  string // ZIKAO_S3_ENDPOINT: host:port
	S3Bucket    string // ZIKAO_S3_BUCKET
	S3AccessKey string // ZIKAO_S3_ACCESS_KEY
	S3SecretKey string // ZIKAO_S3_SECRET_KEY
	S3Region    string // ZIKAO_S3_REGION: empty lets the client find it
	S3TLS       bool   // ZIKAO_S3_TLS
	// FileKeys (ZIKAO_FILE_KEYS): the key-encryption keys of files,
	// "id:base64,…", the first one current (internal/files).
	FileKeys string

	Retention Retention
}

// Retention is how long personal data is kept (the retention schedules).
// Each setting is a Go duration or a number of days such as 30d.
type Retention struct {
	VerificationFiles time.Duration // ZIKAO_RETAIN_VERIFICATION_FILES: online verification's files after the registration ended
	Reports           time.Duration // ZIKAO_RETAIN_REPORTS: reports of registrations ended without completion
	Messages          time.Duration // ZIKAO_RETAIN_MESSAGES: delivered or refused e-mails and SMS
	FileAccesses      time.Duration // ZIKAO_RETAIN_FILE_ACCESSES: the records of staff's fetches of files
}

// DefaultRetention are the retention periods' defaults (the README says why).
var DefaultRetention = Retention{
	VerificationFiles: 30 * 24 * time.Hour,
	Reports:           180 * 24 * time.Hour,
	Messages:          90 * 24 * time.Hour,
	FileAccesses:      3 * 365 * 24 * time.Hour,
}

// FromEnv reads the configuration from the environment.
func FromEnv() (Config, error) {
	year, sitting := DefaultSitting(time.Now())
	c := Config{
		DatabaseURL:            env("ZIKAO_DATABASE_URL", "postgres://postgres@127.0.0.1:55432/zikao?sslmode=disable"),
		TemporalAddress:        env("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace:      env("TEMPORAL_NAMESPACE", "default"),
		TaskQueue:              env("ZIKAO_TASK_QUEUE", "registrations"),
		TemporalAPIKey:         os.Getenv("TEMPORAL_API_KEY"),
		TemporalTLSCert:        os.Getenv("TEMPORAL_TLS_CERT"),
		TemporalTLSKey:         os.Getenv("TEMPORAL_TLS_KEY"),
		ListenAddress:          env("ZIKAO_LISTEN_ADDRESS", "127.0.0.1:8080"),
		DiplomaRegistryURL:     env("ZIKAO_DIPLOMA_REGISTRY_URL", "http://127.0.0.1:8090"),
		DiplomaRegistryUser:    env("ZIKAO_DIPLOMA_REGISTRY_USER", "zikao"),
		DiplomaRegistryKey:     env("ZIKAO_DIPLOMA_REGISTRY_KEY", "dev-key"),
		DiplomaRegistryTimeout: 10 * time.Second,
		IdentityServiceURL:     env("ZIKAO_IDENTITY_SERVICE_URL", "http://127.0.0.1:8092"),
		IdentityServiceUser:    env("ZIKAO_IDENTITY_SERVICE_USER", "zikao"),
		IdentityServiceKey:     env("ZIKAO_IDENTITY_SERVICE_KEY", "dev-key"),
		IdentityServiceTimeout: 10 * time.Second,
		SMTPAddress:            env("ZIKAO_SMTP_ADDRESS", "127.0.0.1:1025"),
		SMTPUser:               os.Getenv("ZIKAO_SMTP_USER"),
		SMTPPassword:           os.Getenv("ZIKAO_SMTP_PASSWORD"),
		SMTPTLS:                env("ZIKAO_SMTP_TLS", "off"),
		MailFrom:               env("ZIKAO_MAIL_FROM", "湖北自考考生注册系统 <noreply@zikao.localhost>"),
		SMSURL:                 env("ZIKAO_SMS_URL", "http://127.0.0.1:8091"),
		SMSAccessKeyID:         env("ZIKAO_SMS_ACCESS_KEY_ID", "zikao"),
		SMSAccessSecret:        env("ZIKAO_SMS_ACCESS_KEY_SECRET", "dev-secret"),
		SMSSignName:            env("ZIKAO_SMS_SIGN_NAME", "湖北自考"),
		SMSTimeout:             10 * time.Second,
		SMSPerAddressHour:      20,
		SMSPerPhoneDay:         10,
		TicketLookupsPerIDDay:  3,
		SessionTTL:             12 * time.Hour,
		Year:                   year,
		Sitting:                sitting,
		WorkerMetricsAddress:   env("ZIKAO_WORKER_METRICS_ADDRESS", "127.0.0.1:9091"),
		PprofAddress:           os.Getenv("ZIKAO_PPROF_ADDRESS"),
		S3Endpoint:             env("ZIKAO_S3_ENDPOINT", "127.0.0.1:8333"),
		S3Bucket:               env("ZIKAO_S3_BUCKET", "zikao-files"),
		S3AccessKey:            env("ZIKAO_S3_ACCESS_KEY", DevS3AccessKey),
		S3SecretKey:            env("ZIKAO_S3_SECRET_KEY", DevS3SecretKey),
		S3Region:               os.Getenv("ZIKAO_S3_REGION"),
		FileKeys:               os.Getenv("ZIKAO_FILE_KEYS"),
		Retention:              DefaultRetention,
	}
	if v := os.Getenv("ZIKAO_TRUSTED_PROXIES"); v != "" {
		c.TrustedProxies = splitComma(v)
	}
	var err error
	if c.TemporalTLS, err = boolEnv("TEMPORAL_TLS", false); err != nil {
		return c, err
	}
	if c.TemporalGzip, err = boolEnv("ZIKAO_TEMPORAL_GZIP", false); err != nil {
		return c, err
	}
	if c.Year, err = intEnv("ZIKAO_YEAR", c.Year); err != nil {
		return c, err
	}
	if c.Sitting, err = intEnv("ZIKAO_SITTING", c.Sitting); err != nil {
		return c, err
	}
	if c.Sitting != 1 && c.Sitting != 2 {
		return c, fmt.Errorf("ZIKAO_SITTING must be 1 (April) or 2 (October), got %d", c.Sitting)
	}
	if c.SessionTTL, err = durationEnv("ZIKAO_SESSION_TTL", c.SessionTTL); err != nil {
		return c, err
	}
	if c.DiplomaRegistryTimeout, err = durationEnv("ZIKAO_DIPLOMA_REGISTRY_TIMEOUT", c.DiplomaRegistryTimeout); err != nil {
		return c, err
	}
	if c.IdentityServiceTimeout, err = durationEnv("ZIKAO_IDENTITY_SERVICE_TIMEOUT", c.IdentityServiceTimeout); err != nil {
		return c, err
	}
	if err := c.readSMS(); err != nil {
		return c, err
	}
	if c.ReviewOverdueAfter, err = ReviewOverdueAfter(); err != nil {
		return c, err
	}
	if err := c.readMail(); err != nil {
		return c, err
	}
	if c.S3TLS, err = boolEnv("ZIKAO_S3_TLS", false); err != nil {
		return c, err
	}
	if c.Retention, err = RetentionFromEnv(); err != nil {
		return c, err
	}
	return c, nil
}

// The object store's credentials of `zikao dev` (its local SeaweedFS).
const (
	DevS3AccessKey = "zikao-dev"
	DevS3SecretKey = "zikao-dev-secret"
)

// RetentionFromEnv reads the retention periods.
func RetentionFromEnv() (Retention, error) {
	r := DefaultRetention
	for _, p := range []struct {
		name string
		v    *time.Duration
	}{{"ZIKAO_RETAIN_VERIFICATION_FILES", &r.VerificationFiles}, {"ZIKAO_RETAIN_REPORTS", &r.Reports},
		{"ZIKAO_RETAIN_MESSAGES", &r.Messages}, {"ZIKAO_RETAIN_FILE_ACCESSES", &r.FileAccesses}} {
		v := os.Getenv(p.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if days, ok := strings.CutSuffix(v, "d"); ok {
			var n int
			n, err = strconv.Atoi(days)
			d = time.Duration(n) * 24 * time.Hour
		}
		if err != nil || d <= 0 {
			return r, fmt.Errorf("%s: want a positive number of days (30d) or a Go duration (720h), got %q", p.name, v)
		}
		*p.v = d
	}
	return r, nil
}

// readSMS reads the SMS provider's timeout, the switch and the limits.
func (c *Config) readSMS() error {
	var err error
	if c.SMSTimeout, err = durationEnv("ZIKAO_SMS_TIMEOUT", c.SMSTimeout); err != nil {
		return err
	}
	if c.SMSEnabled, err = boolEnv("ZIKAO_SMS_ENABLED", true); err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		v    *int
	}{{"ZIKAO_SMS_PER_ADDRESS_HOUR", &c.SMSPerAddressHour}, {"ZIKAO_SMS_PER_PHONE_DAY", &c.SMSPerPhoneDay},
		{"ZIKAO_TICKET_LOOKUPS_PER_ID_DAY", &c.TicketLookupsPerIDDay}} {
		if *l.v, err = intEnv(l.name, *l.v); err != nil {
			return err
		}
		if *l.v < 1 {
			return fmt.Errorf("%s must be at least 1, got %d", l.name, *l.v)
		}
	}
	return nil
}

// DefaultReviewOverdueAfter is how long a review waits before it is overdue
// when ZIKAO_REVIEW_OVERDUE_AFTER is not set.
const DefaultReviewOverdueAfter = 72 * time.Hour

// ReviewOverdueAfter reads ZIKAO_REVIEW_OVERDUE_AFTER alone (a Go duration,
// such as 72h), for the API's metrics, which have no Config.
func ReviewOverdueAfter() (time.Duration, error) {
	d, err := durationEnv("ZIKAO_REVIEW_OVERDUE_AFTER", DefaultReviewOverdueAfter)
	if err == nil && d <= 0 {
		err = fmt.Errorf("ZIKAO_REVIEW_OVERDUE_AFTER must be positive, got %s", d)
	}
	return d, err
}

// DefaultSitting is the next sitting whose registration is open at t: the
// October sitting from January to June, the April sitting of next year after.
func DefaultSitting(t time.Time) (year, sitting int) {
	if t.Month() <= time.June {
		return t.Year(), 2
	}
	return t.Year() + 1, 1
}

// TemporalClientOptions are the options to dial Temporal with these settings.
func (c Config) TemporalClientOptions() (client.Options, error) {
	o := client.Options{HostPort: c.TemporalAddress, Namespace: c.TemporalNamespace}
	if !c.TemporalGzip {
		o.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	if c.TemporalTLSCert != "" || c.TemporalTLSKey != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return o, fmt.Errorf("load Temporal client certificate: %w", err)
		}
		o.ConnectionOptions.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if c.TemporalTLS || c.TemporalAPIKey != "" {
		o.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if c.TemporalAPIKey != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(c.TemporalAPIKey)
	}
	return o, nil
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func intEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

func boolEnv(name string, def bool) (bool, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

func durationEnv(name string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// readMail checks ZIKAO_SMTP_TLS and reads ZIKAO_MAIL_ENABLED (default true).
func (c *Config) readMail() error {
	switch c.SMTPTLS {
	case "off", "starttls", "tls":
	default:
		return fmt.Errorf("ZIKAO_SMTP_TLS must be off, starttls or tls, got %q", c.SMTPTLS)
	}
	if _, err := mail.ParseAddress(c.MailFrom); err != nil {
		return fmt.Errorf("ZIKAO_MAIL_FROM %q: %w", c.MailFrom, err)
	}
	var err error
	c.MailEnabled, err = boolEnv("ZIKAO_MAIL_ENABLED", true)
	return err
}
