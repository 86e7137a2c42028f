package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/sms"
	"zikao/internal/throttle"
)

// requestCode answers POST /sms-codes: 202 whatever the phone.
func (s *Server) requestCode(c *gin.Context) {
	var in struct {
		Phone   string `json:"phone"`
		Purpose string `json:"purpose"`
	}
	if !bindJSON(c, &in) {
		return
	}
	if err := s.sendCode(c, in.Phone, in.Purpose); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{})
}

// sendCode asks for an SMS code (the API's and the pages' one path) and
// sends it at once.
func (s *Server) sendCode(c *gin.Context, phone, purpose string) error {
	id, err := s.Accounts.RequestCode(c, phone, purpose, c.ClientIP())
	s.countThrottled(err, sms.Purpose(purpose))
	if err != nil {
		return err
	}
	s.deliverSoon(id)
	return nil
}

// findTicket is 查询准考证 (the API's and the pages' one path).
func (s *Server) findTicket(c *gin.Context, name, idNumber string) error {
	id, err := s.Accounts.LookupTicket(c, name, idNumber, c.ClientIP())
	s.countThrottled(err, sms.TicketLookup)
	if err != nil {
		return err
	}
	s.deliverSoon(id)
	return nil
}

func (s *Server) countThrottled(err error, p sms.Purpose) {
	var locked *throttle.LockedError
	if errors.As(err, &locked) {
		s.SMSMetrics.Throttled(p)
	}
}

// deliverSoon sends the SMS id in the background, after the answer: the
// answer takes as long whether or not a message goes. Without a sender
// here, or when this fails, the worker's sender delivers it.
func (s *Server) deliverSoon(id string) {
	if id == "" || s.SMS == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.SMS.Deliver(ctx, id); err != nil {
			slog.Warn("SMS not sent at once; the worker's sender will", "sms_id", id, "error", err)
		}
	}()
}

// lookupTicket answers POST /ticket-lookups: 202 whatever matched.
func (s *Server) lookupTicket(c *gin.Context) {
	var in struct {
		Name     string `json:"name"`
		IDNumber string `json:"id_number"`
	}
	if !bindJSON(c, &in) {
		return
	}
	if err := s.findTicket(c, in.Name, in.IDNumber); err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{})
}

// bindPhone answers PUT /accounts/me/phone.
func (s *Server) bindPhone(c *gin.Context) {
	var in struct {
		Phone   string `json:"phone"`
		SMSCode string `json:"sms_code"`
	}
	if !bindJSON(c, &in) {
		return
	}
	phone, err := s.Accounts.BindPhone(c, account(c).ID, in.Phone, in.SMSCode)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"phone": phone})
}

// myTickets answers GET /accounts/me/tickets.
func (s *Server) myTickets(c *gin.Context) {
	tickets, err := s.Accounts.Tickets(c, account(c).ID)
	if err != nil {
		failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tickets": tickets})
}
