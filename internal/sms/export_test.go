package sms

// SetAfterAccept installs the test hook run between the provider's
// acceptance of a message and the commit of accepted_at; an error stands
// for a crash there.
func (s *Sender) SetAfterAccept(f func(id string) error) { s.afterAccept = f }
