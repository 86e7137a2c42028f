package api

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"zikao/internal/accounts"
	"zikao/internal/registering"
	"zikao/internal/throttle"
	"zikao/workflows"
)

// apiError is the contract's error body.
type apiError struct {
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	MessageEN string            `json:"message_en"`
	Fields    map[string]string `json:"fields,omitempty"`    // in Chinese
	FieldsEN  map[string]string `json:"fields_en,omitempty"` // the same in English
}

type problem struct {
	status     int
	retryAfter string // seconds, for the Retry-After header ("" for none)
	apiError
}

// The errors the API answers with, by code.
var problems = map[string]problem{}

func define(status int, code, zh, en string) problem {
	p := problem{status: status, apiError: apiError{Code: code, Message: zh, MessageEN: en}}
	problems[code] = p
	return p
}

var (
	errMalformed         = define(http.StatusBadRequest, "malformed_body", "请求格式错误", "the request body is malformed")
	errUnauthenticated   = define(http.StatusUnauthorized, "unauthenticated", "请先登录", "log in first")
	errInvalidCreds      = define(http.StatusUnauthorized, "invalid_credentials", "登录名或密码错误", "wrong login name or password")
	errResetRejected     = define(http.StatusUnauthorized, "reset_rejected", "密码找回信息不正确", "the password reset was rejected")
	errForbidden         = define(http.StatusForbidden, "forbidden", "无权进行此操作", "you are not allowed to do this")
	errNotFound          = define(http.StatusNotFound, "not_found", "未找到", "not found")
	_                    = define(http.StatusNotFound, "registration_not_found", "未找到注册信息", "no registration found")
	errEnrolmentNotFound = define(http.StatusNotFound, "enrolment_not_found", "未找到匹配的在籍信息", "no matching enrolment record")
	errLoginNameTaken    = define(http.StatusConflict, "login_name_taken", "该登录名已被使用", "this login name is already in use")
	errPhoneTaken        = define(http.StatusConflict, "phone_taken", "该手机号码已绑定其他账号", "this phone number is bound to another account")
	errIDEnrolled        = define(http.StatusConflict, "id_number_enrolled", "该身份证号已有在籍信息，请选择在籍注册", "this ID number has enrolment records: use the enrolled registration")
	errIDRegistered      = define(http.StatusConflict, "id_number_registered", "该身份证号已完成注册和现场确认，不能重复注册", "this ID number is already registered and confirmed")
	errInProgress        = define(http.StatusConflict, "registration_in_progress", "您已有进行中的注册，请在“我的注册”中查看", "you already have a registration in progress")
	// The same code, when the ID number's open registration belongs to another account.
	errIDInProgress = problem{status: http.StatusConflict, apiError: apiError{Code: "registration_in_progress",
		Message: "该身份证号已有进行中的注册（可能由其他账号提交）", MessageEN: "this ID number already has a registration in progress, perhaps from another account"}}
	errWrongOldPassword = problem{status: http.StatusUnauthorized, apiError: apiError{Code: "invalid_credentials",
		Message: "原密码错误", MessageEN: "the old password is wrong"}}
	errBodyTooLarge = define(http.StatusRequestEntityTooLarge, "request_too_large", "请求内容过大", "the request body is too large")
	_               = define(http.StatusConflict, "registration_not_open", "该考区本期未开放注册或现场确认已结束", "the exam area has no open confirmation window this sitting")
	_               = define(http.StatusConflict, "identity_mismatch", "身份证信息与注册信息不符", "the ID card does not match the registration")
	_               = define(http.StatusConflict, "not_awaiting_report", "当前状态不能上传学历认证报告", "the registration is not awaiting a diploma report")
	_               = define(http.StatusConflict, "not_awaiting_review", "该注册当前不在此审核环节", "the registration is not awaiting this review")
	_               = define(http.StatusConflict, "not_pre_registered", "该注册不是预注册状态", "the registration is not pre-registered")
	_               = define(http.StatusConflict, "outside_confirmation_window", "不在本考区现场确认时间内", "outside the exam area's confirmation window")
	_               = define(http.StatusConflict, "registration_closed", "本次注册已结束", "the registration is already closed")
	_               = define(http.StatusConflict, "online_verification_closed", "网上验证已关闭，请到考区现场确认", "online verification is closed: confirm on site")
	_               = define(http.StatusConflict, "challenge_expired", "朗读数字已失效（超过10分钟、已使用或已重新获取），请重新获取后再录制视频", "the challenge has expired, was used or was replaced: ask for new digits and record again")
	_               = define(http.StatusConflict, "identity_review_not_available", "三次网上验证未通过后才能申请人工核验，且只能申请一次", "a manual check can be asked for once, after three failed tries")
	_               = unavailableFor(define(http.StatusServiceUnavailable, "verification_unavailable", "身份核验服务暂时不可用，本次不计入验证次数，请稍后重试", "the identity verification service is unavailable; no try was used, try again later"), "10")
	_               = define(http.StatusGone, "file_purged", "该文件已超过保存期限，已按规定删除", "the file was deleted when its retention period ended")
	errTooLarge     = define(http.StatusRequestEntityTooLarge, "file_too_large", "文件过大（最大 5 MB）", "the file is too large (5 MB at most)")
	_               = define(http.StatusUnsupportedMediaType, "unsupported_file_type", "不支持的文件类型", "this file type is not accepted")
	errValidation   = define(http.StatusUnprocessableEntity, "validation_failed", "提交的信息有误", "validation failed")
	errTooMany      = define(http.StatusTooManyRequests, "too_many_attempts", "尝试次数过多，请稍后再试", "too many attempts, try again later")
	errUnavailable  = define(http.StatusServiceUnavailable, "temporarily_unavailable", "服务暂时不可用，请稍后重试", "the service is temporarily unavailable, try again")
	errInternal     = define(http.StatusInternalServerError, "internal_error", "系统错误", "internal error")
)

// unavailableFor gives a defined problem a Retry-After.
func unavailableFor(p problem, seconds string) problem {
	p.retryAfter = seconds
	problems[p.Code] = p
	return p
}

// fail answers with p and stops the handler chain: with the contract's
// JSON body, or with an error page on the web pages' paths (isPage).
func fail(c *gin.Context, p problem) {
	if p.retryAfter != "" {
		c.Header("Retry-After", p.retryAfter)
	}
	if isPage(c) {
		renderProblem(c, p)
		return
	}
	c.AbortWithStatusJSON(p.status, gin.H{"error": p.apiError})
}

// invalid answers 422 with per-field messages (invalidProblem).
func invalid(c *gin.Context, fields registering.Fields) { fail(c, invalidProblem(fields)) }

// invalidProblem is 422 with per-field messages. Each message is written
// "中文 / English" (registering.Fields); the problem gives them apart, in
// fields and fields_en.
func invalidProblem(fields registering.Fields) problem {
	p := errValidation
	p.Fields, p.FieldsEN = fields.Split()
	return p
}

// refusal is the contract's answer to a refusal of the registration service.
func refusal(r *registering.Refusal) problem {
	p, ok := problems[r.Code]
	if !ok {
		p = problem{status: http.StatusConflict, apiError: apiError{Code: r.Code, Message: "当前状态不允许此操作", MessageEN: "not allowed in the current state"}}
	}
	switch {
	case r.Code == registering.CodeInProgress && r.Detail == registering.DetailOtherAccount:
		p = errIDInProgress
	case r.Code == registering.CodeIdentityMismatch && r.Detail == registering.DetailIDNumber:
		p.Message, p.MessageEN = "身份证号与注册信息不符", "the ID number on the card is not the registration's"
	case r.Code == registering.CodeIdentityMismatch && r.Detail == registering.DetailName:
		p.Message, p.MessageEN = "姓名与注册信息不符", "the name on the card is not the registration's"
	case r.Code == registering.CodeAreaNotFound && r.Detail == registering.DetailExamArea:
		p.Message, p.MessageEN = "没有此考区", "no such exam area"
	case r.Code == workflows.ErrOutsideWindow && !r.Window.EndsAt.IsZero():
		p.Message = fmt.Sprintf("不在本考区现场确认时间内（%s 至 %s）", day(r.Window.StartsAt), day(r.Window.EndsAt))
		p.MessageEN = fmt.Sprintf("outside the confirmation window (%s to %s)",
			r.Window.StartsAt.Format(time.RFC3339), r.Window.EndsAt.Format(time.RFC3339))
	}
	return p
}

// failBody answers for a body that could not be read or decoded: 413 past
// the size limit, else 400.
func failBody(c *gin.Context, err error) {
	if isTooLarge(err) {
		fail(c, errBodyTooLarge)
	} else {
		fail(c, errMalformed)
	}
}

func isTooLarge(err error) bool {
	var tooLarge *http.MaxBytesError
	return errors.As(err, &tooLarge)
}

// failErr answers for an error with its problem (problemOf).
func failErr(c *gin.Context, err error) { fail(c, problemOf(c, err)) }

// problemOf is the contract's problem for an error, for the JSON API and the
// web pages alike: the service's refusals and validation errors and the
// accounts' errors with the contract's codes, 429 for a lockout, 503 with
// Retry-After when PostgreSQL or Temporal is unavailable, 500 otherwise
// (logged, without request data).
func problemOf(c *gin.Context, err error) problem {
	var locked *throttle.LockedError
	var refused *registering.Refusal
	var bad *registering.Invalid
	var inv *accounts.InvalidError
	switch {
	case errors.As(err, &refused):
		return refusal(refused)
	case errors.As(err, &bad):
		return invalidProblem(bad.Fields)
	case errors.As(err, &inv):
		return invalidProblem(inv.Fields)
	case errors.Is(err, accounts.ErrLoginNameTaken):
		return errLoginNameTaken
	case errors.Is(err, accounts.ErrPhoneTaken):
		return errPhoneTaken
	case errors.Is(err, accounts.ErrInvalidCredentials):
		return errInvalidCreds
	case errors.Is(err, accounts.ErrResetRejected):
		return errResetRejected
	case registering.Unavailable(err):
		slog.WarnContext(c, "dependency unavailable", "route", c.FullPath(), "error", err)
		p := errUnavailable
		p.retryAfter = "5"
		return p
	case errors.As(err, &locked):
		p := errTooMany
		p.retryAfter = strconv.Itoa(int(locked.RetryAfter.Seconds()))
		zh, en := waitWords(locked.RetryAfter)
		p.Message, p.MessageEN = "尝试次数过多，"+zh, "too many attempts, "+en
		return p
	case isTooLarge(err):
		return errBodyTooLarge
	}
	slog.ErrorContext(c, "request failed", "route", c.FullPath(), "error", err)
	return errInternal
}

// waitWords says how long to wait: in seconds up to two minutes (a phone's
// one code a minute), then minutes, then hours (the limits of a day).
func waitWords(d time.Duration) (zh, en string) {
	secs := int(math.Ceil(d.Seconds()))
	switch {
	case secs <= 120:
		return fmt.Sprintf("请 %d 秒后再试", secs), fmt.Sprintf("try again in %d second(s)", secs)
	case secs <= 120*60:
		m := (secs + 59) / 60
		return fmt.Sprintf("请 %d 分钟后再试", m), fmt.Sprintf("try again in %d minute(s)", m)
	}
	h := (secs + 3599) / 3600
	return fmt.Sprintf("请 %d 小时后再试", h), fmt.Sprintf("try again in %d hour(s)", h)
}
