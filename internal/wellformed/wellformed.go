// Package wellformed checks that untrusted input is well-formed text before
// anything decodes or stores it. PostgreSQL refuses a NUL byte or invalid
// UTF-8 in text, and an integer beyond 32 bits in an integer column, with
// an error rather than a validation message; terminals and logs misread
// control characters. The API refuses such input before any handler runs
// (api/sanitize.go); field validators then decide what each field accepts.
package wellformed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text reports whether s is text: valid UTF-8 without control characters
// other than tab, line feed and carriage return, and without U+FFFD (what
// encoding/json makes of invalid bytes and of lone surrogate escapes).
func Text(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r == utf8.RuneError || unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	})
}

// Fault is what is wrong with one value of a JSON body.
type Fault int

const (
	// NotText: a string that is not Text.
	NotText Fault = iota + 1
	// NotInt32: a number that is not a whole number within int32, the range
	// of PostgreSQL's integer. No request carries any other number.
	NotInt32
)

// MaxDepth bounds the nesting of a JSON body; requests nest 2 deep.
const MaxDepth = 32

// Errors of a body that is no well-formed JSON text.
var (
	ErrNotUTF8  = errors.New("not UTF-8")
	ErrTooDeep  = fmt.Errorf("nested more than %d deep", MaxDepth)
	ErrBadKey   = errors.New("an object key is not text")
	ErrTrailing = errors.New("more than one value")
)

// JSON checks a JSON body. It returns an error when the body is not one
// UTF-8 JSON value nested at most MaxDepth deep whose object keys are Text;
// else the faults of its strings and numbers, by path ("personal.name",
// "list[2]"; "" for a value at the top level), none when it has none.
func JSON(body []byte) (map[string]Fault, error) {
	if !utf8.Valid(body) {
		return nil, ErrNotUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	s := scan{dec: dec, faults: map[string]Fault{}}
	if err := s.value("", 0); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, ErrTrailing
	}
	return s.faults, nil
}

type scan struct {
	dec    *json.Decoder
	faults map[string]Fault
}

func (s scan) value(path string, depth int) error {
	if depth > MaxDepth {
		return ErrTooDeep
	}
	tok, err := s.dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim: // { or [: Token returns no closing one here
		if v == '{' {
			return s.object(path, depth+1)
		}
		return s.array(path, depth+1)
	case string:
		if !Text(v) {
			s.fault(path, NotText)
		}
	case json.Number:
		if _, err := strconv.ParseInt(v.String(), 10, 32); err != nil {
			s.fault(path, NotInt32)
		}
	}
	return nil
}

// fault keeps the first fault of a path (a key may be repeated).
func (s scan) fault(path string, f Fault) {
	if _, ok := s.faults[path]; !ok {
		s.faults[path] = f
	}
}

func (s scan) object(path string, depth int) error {
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		key, _ := tok.(string) // Token returns only strings as keys
		if !Text(key) {
			return ErrBadKey
		}
		if path != "" {
			key = path + "." + key
		}
		if err := s.value(key, depth); err != nil {
			return err
		}
	}
	return s.end()
}

func (s scan) array(path string, depth int) error {
	for i := 0; s.dec.More(); i++ {
		if err := s.value(path+"["+strconv.Itoa(i)+"]", depth); err != nil {
			return err
		}
	}
	return s.end()
}

// end reads the } or ] that closes an object or array.
func (s scan) end() error {
	if _, err := s.dec.Token(); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}
