package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"zikao/internal/devstack"
	"zikao/internal/mail"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// A server that requires STARTTLS and a password: the sender with the
// wrong password (or without TLS) records the failure and tries again; with
// TLS and the right credentials the message arrives, once.
func TestStartTLSAndAuthentication(t *testing.T) {
	sendAll(t, newSender())
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	authFile := filepath.Join(dir, "passwords")
	if err := os.WriteFile(authFile, []byte("zikao:smtp-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secure, err := devstack.StartMailpit(context.Background(), devstack.MailpitOptions{TLSCert: certFile, TLSKey: keyFile, AuthFile: authFile})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = secure.Stop() }()
	ids := queue(t, 1)

	sender := func(tlsMode, password string) *mail.Sender {
		s := newSender()
		s.SMTP = mail.SMTP{Address: secure.SMTPAddress(), TLS: tlsMode, User: "zikao", Password: password, Timeout: 5 * time.Second, RootCAs: pool}
		return s
	}
	for _, bad := range []*mail.Sender{sender("starttls", "wrong"), sender("off", "smtp-secret")} {
		time.Sleep(500 * time.Millisecond) // the last failure's backoff
		sendAll(t, bad)
		var lastError string
		if err := database.Get(&lastError, `SELECT COALESCE(last_error, '') FROM outbox WHERE accepted_at IS NULL`); err != nil {
			t.Fatal(err)
		}
		if lastError == "" || strings.Contains(lastError, "@") {
			t.Fatalf("failure recorded as %q: want the error, without an address", lastError)
		}
	}
	time.Sleep(time.Second)
	sendAll(t, sender("starttls", "smtp-secret"))
	if n := pending(t); n != 0 {
		t.Fatalf("%d messages pending", n)
	}
	all, err := secure.Search(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].MessageID != ids[0] {
		t.Fatalf("the secure server holds %d messages (%v), want the one message %s", len(all), all, ids[0])
	}
}
