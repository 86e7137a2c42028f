package config

import "testing"

func TestMailSettings(t *testing.T) {
	for _, v := range []string{"ZIKAO_SMTP_ADDRESS", "ZIKAO_SMTP_TLS", "ZIKAO_MAIL_FROM", "ZIKAO_MAIL_ENABLED"} {
		t.Setenv(v, "")
	}
	c, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTPAddress != "127.0.0.1:1025" || c.SMTPTLS != "off" || !c.MailEnabled || c.SMTPUser != "" {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv("ZIKAO_MAIL_ENABLED", "false")
	t.Setenv("ZIKAO_SMTP_TLS", "starttls")
	if c, err = FromEnv(); err != nil || c.MailEnabled || c.SMTPTLS != "starttls" {
		t.Fatalf("e-mail off, STARTTLS: %+v, %v", c, err)
	}
	for name, value := range map[string]string{"ZIKAO_SMTP_TLS": "yes", "ZIKAO_MAIL_FROM": "not an address", "ZIKAO_MAIL_ENABLED": "perhaps"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := FromEnv(); err == nil {
				t.Fatalf("%s=%q accepted", name, value)
			}
		})
	}
}
