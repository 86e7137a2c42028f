package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"zikao/internal/registering"
	"zikao/internal/wellformed"
)

// sanitize refuses hostile input before any handler sees it, whatever the
// route, so that none of it reaches PostgreSQL (which refuses NUL bytes and
// integers past 32 bits with an error, and so a 500) or a stored record:
//
//   - path parameters must be text (wellformed.Text), else 404;
//   - the query string must parse (400 malformed_query), its names must be
//     text (400) and its values too (422 validation_failed, per parameter);
//   - a JSON body (any body of POST, PUT or PATCH but a multipart form)
//     must be one UTF-8 JSON value, nested at most wellformed.MaxDepth deep,
//     whose keys are text (400 malformed_body); its strings must be text
//     and its numbers whole numbers within PostgreSQL's integer (422, per
//     field);
//   - a web page's form (pages.go) is checked by readForm or readMultipart;
//   - a multipart form is checked by parseMultipart, which the handlers
//     call after authentication (so that nobody unknown makes the server
//     spool an upload): it must parse (400, or 413 past the body limit), its
//     field names must be text (400) and its values too (422, per field).
//
// Field validators still decide what each field accepts; this is the floor
// under all of them.
func sanitize(c *gin.Context) {
	if checkParams(c) && checkQuery(c) && checkBody(c) {
		c.Next()
	}
}

var errMalformedQuery = define(http.StatusBadRequest, "malformed_query", "查询参数格式错误", "the query string is malformed")

// invalidText is the message for a value that is not text.
var invalidText = [2]string{"含有无效字符（控制字符或无效编码）", "holds invalid characters (control characters or invalid encoding)"}

func malformed(zh, en string) problem {
	p := errMalformed
	p.Message, p.MessageEN = zh, en
	return p
}

// checkParams answers 404 for a path parameter that is not text: no
// resource is named so.
func checkParams(c *gin.Context) bool {
	for _, p := range c.Params {
		if !wellformed.Text(p.Value) {
			fail(c, errNotFound)
			return false
		}
	}
	return true
}

func checkQuery(c *gin.Context) bool {
	if c.Request.URL.RawQuery == "" {
		return true
	}
	values, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, errMalformedQuery)
		return false
	}
	return checkValues(c, values, errMalformedQuery)
}

// checkValues refuses names that are not text with badName, values that
// are not text with 422.
func checkValues(c *gin.Context, values map[string][]string, badName problem) bool {
	fields := registering.Fields{}
	for name, vs := range values {
		if !wellformed.Text(name) {
			fail(c, badName)
			return false
		}
		for _, v := range vs {
			if !wellformed.Text(v) {
				fields.Add(name, invalidText[0], invalidText[1])
			}
		}
	}
	if len(fields) > 0 {
		invalid(c, fields)
		return false
	}
	return true
}

// checkBody checks the body of the methods whose handlers read one.
func checkBody(c *gin.Context) bool {
	switch m := c.Request.Method; {
	case m != http.MethodPost && m != http.MethodPut && m != http.MethodPatch:
		return true
	case strings.EqualFold(c.ContentType(), "multipart/form-data"):
		return true // parseMultipart checks it, after authentication
	case isPage(c):
		return true // the web pages' forms: readForm checks them
	}
	return checkJSON(c)
}

var errFormName = malformed("表单字段名含有无效字符", "a form field name holds invalid characters")

// checkForm checks the fields of a parsed multipart form.
func checkForm(c *gin.Context) bool {
	for name := range c.Request.MultipartForm.File {
		if !wellformed.Text(name) {
			fail(c, errFormName)
			return false
		}
	}
	return checkValues(c, c.Request.MultipartForm.Value, errFormName)
}

// bodyChecked marks a request whose body checkJSON has checked.
const bodyChecked = "zikao.body-checked"

// checkJSON reads the body (within limitBody's limit), checks it and hands
// it on to the handler.
func checkJSON(c *gin.Context) bool {
	if c.GetBool(bodyChecked) {
		return true
	}
	body, err := io.ReadAll(c.Request.Body)
	switch {
	case isTooLarge(err):
		fail(c, errBodyTooLarge)
		return false
	case err != nil:
		fail(c, malformed("请求内容读取失败", "the request body could not be read"))
		return false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		c.Set(bodyChecked, true)
		return true // the handler answers for a missing body
	}
	faults, err := wellformed.JSON(body)
	switch {
	case errors.Is(err, wellformed.ErrNotUTF8):
		fail(c, malformed("请求内容须为 UTF-8 编码的 JSON", "the body must be JSON encoded in UTF-8"))
		return false
	case err != nil:
		fail(c, malformed("请求内容须为一个格式正确的 JSON 值", "the body must be one well-formed JSON value ("+err.Error()+")"))
		return false
	case len(faults) > 0:
		invalid(c, jsonFields(faults))
		return false
	}
	c.Set(bodyChecked, true)
	return true
}

// refuseNulls answers 422 for the fields of a JSON object set to null but
// those allowed (the OpenAPI document's nullable ones): in a PATCH a null
// would otherwise read as "unchanged", and the client believe it changed
// something. It reports whether there was none.
func refuseNulls(c *gin.Context, fields map[string]json.RawMessage, allowed ...string) bool {
	f := registering.Fields{}
	for name, v := range fields {
		if string(bytes.TrimSpace(v)) == "null" && !slices.Contains(allowed, name) {
			f.Add(name, "不能为 null：不修改的字段请省略", "must not be null: leave out what does not change")
		}
	}
	if len(f) > 0 {
		invalid(c, f)
		return false
	}
	return true
}

// faultMessages are the messages of wellformed's faults.
var faultMessages = map[wellformed.Fault][2]string{
	wellformed.NotText:  invalidText,
	wellformed.NotInt32: {"须为 -2147483648 至 2147483647 之间的整数", "must be a whole number from -2147483648 to 2147483647"},
}

// jsonFields are the faults of a JSON body as per-field messages; a value
// at the top level is the field "body".
func jsonFields(faults map[string]wellformed.Fault) registering.Fields {
	fields := registering.Fields{}
	for path, f := range faults {
		if path == "" {
			path = "body"
		}
		fields.Add(path, faultMessages[f][0], faultMessages[f][1])
	}
	return fields
}
