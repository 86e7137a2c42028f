package mail

// SetAfterAccept installs the test hook run between the SMTP server's
// acceptance of a message and the commit of accepted_at.
func (s *Sender) SetAfterAccept(f func(id string) error) { s.afterAccept = f }

// Scrub is scrub, for the tests.
var Scrub = scrub
