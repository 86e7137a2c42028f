package files

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Envelope encryption: each file is sealed with a data key of its own
// (AES-256-GCM, random), and that data key is sealed with a key-encryption
// key of the settings (ZIKAO_FILE_KEYS), bound to the file's SHA-256. The
// object store holds only ciphertext; PostgreSQL holds the sealed data key
// and the id of the key that sealed it. Rotating a key-encryption key
// re-seals the data keys (`zikao files rekey`), never the objects.

// DevKeys are the key of `zikao dev` and the tests. Its secret is public:
// the API and the worker warn when they run with it.
const DevKeys = "dev:emlrYW8tZGV2ZWxvcG1lbnQta2V5LW5vdC1zZWNyZXQ="

// Keys are the key-encryption keys: the current one seals new data keys,
// every one opens those it sealed.
type Keys struct {
	Current string
	keys    map[string]cipher.AEAD
}

var keyID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeys reads "id:base64,id:base64…" (each key 32 bytes, standard
// base64); the first is the current one.
func ParseKeys(s string) (Keys, error) {
	k := Keys{keys: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(s, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || !keyID.MatchString(id) {
			return Keys{}, fmt.Errorf("file key %d: want id:base64 with an id of letters, digits, - or _", i+1)
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(raw) != 32 {
			return Keys{}, fmt.Errorf("file key %q: want 32 bytes in standard base64", id)
		}
		if _, dup := k.keys[id]; dup {
			return Keys{}, fmt.Errorf("file key %q given twice", id)
		}
		if k.keys[id], err = newAEAD(raw); err != nil {
			return Keys{}, err
		}
		if i == 0 {
			k.Current = id
		}
	}
	return k, nil
}

// MustParseKeys is ParseKeys for keys known to be well formed.
func MustParseKeys(s string) Keys {
	k, err := ParseKeys(s)
	if err != nil {
		panic(err)
	}
	return k
}

// Dev reports whether new files are sealed with the public development key.
func (k Keys) Dev() bool { return k.Current == "dev" }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// errKey: a file sealed with a key the settings no longer hold.
var errKey = errors.New("file sealed with a key not in ZIKAO_FILE_KEYS")

// newDataKey makes a data key and seals it with the current key, bound to
// the file's digest.
func (k Keys) newDataKey(sum []byte) (dataKey, sealed []byte, err error) {
	dataKey = make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, nil, err
	}
	return dataKey, seal(k.keys[k.Current], dataKey, sum), nil
}

// dataKey opens a sealed data key.
func (k Keys) dataKey(id string, sealed, sum []byte) ([]byte, error) {
	a, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", errKey, id)
	}
	return open(a, sealed, sum)
}

// reseal seals a data key again with the current key.
func (k Keys) reseal(id string, sealed, sum []byte) ([]byte, error) {
	dk, err := k.dataKey(id, sealed, sum)
	if err != nil {
		return nil, err
	}
	return seal(k.keys[k.Current], dk, sum), nil
}

// encrypt seals a file's bytes with its data key, bound to its digest.
func encrypt(dataKey, plain, sum []byte) ([]byte, error) {
	a, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	return seal(a, plain, sum), nil
}

// decrypt opens what encrypt sealed.
func decrypt(dataKey, sealed, sum []byte) ([]byte, error) {
	a, err := newAEAD(dataKey)
	if err != nil {
		return nil, err
	}
	return open(a, sealed, sum)
}

// seal returns nonce || ciphertext.
func seal(a cipher.AEAD, plain, ad []byte) []byte {
	nonce := make([]byte, a.NonceSize(), a.NonceSize()+len(plain)+a.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return a.Seal(nonce, nonce, plain, ad)
}

func open(a cipher.AEAD, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < a.NonceSize() {
		return nil, errors.New("sealed data too short")
	}
	plain, err := a.Open(nil, sealed[:a.NonceSize()], sealed[a.NonceSize():], ad)
	if err != nil {
		return nil, fmt.Errorf("open sealed data: %w", err)
	}
	return plain, nil
}
