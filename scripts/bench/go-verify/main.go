// The go-macaroon baseline for verification (issue 13): Debian's
// golang-gopkg-macaroon.v2-dev decoding a mintfs token and checking its
// signature and caveats (time-before parsed and compared, the list caveats
// matched against a request), in a loop for the given seconds.
//
//	go-verify SECONDS KEY_HEX TOKEN
//
// Prints {"verifiesPerSecond": N} as one JSON line; exits 1 if the token does
// not verify.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/macaroon.v2"
)

var request = map[string]string{
	"service": "github",
	"host":    "api.github.com",
	"method":  "GET",
}

func check(caveat string) error {
	kind, rest, _ := strings.Cut(caveat, " ")
	values := strings.Split(rest, " ")
	switch kind {
	case "time-before":
		at, err := time.Parse(time.RFC3339, rest)
		if err != nil || !time.Now().Before(at) {
			return errors.New("expired")
		}
		return nil
	case "agent":
		return nil
	case "path":
		// Prefix globs: /repos/acme/widgets/** against /repos/acme/widgets/pulls.
		for _, glob := range values {
			if strings.HasPrefix("/repos/acme/widgets/pulls", strings.TrimSuffix(glob, "**")) {
				return nil
			}
		}
		return errors.New("path")
	default:
		want, known := request[kind]
		if !known {
			return errors.New("unknown caveat")
		}
		for _, value := range values {
			if value == want {
				return nil
			}
		}
		return errors.New(kind)
	}
}

func verify(key []byte, token string) error {
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return err
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(data); err != nil {
		return err
	}
	return m.Verify(key, check, nil)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: go-verify SECONDS KEY_HEX TOKEN")
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[1], 64)
	key, err2 := hex.DecodeString(os.Args[2])
	if err != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "go-verify: bad arguments")
		os.Exit(2)
	}
	token := os.Args[3]
	if err := verify(key, token); err != nil {
		fmt.Fprintln(os.Stderr, "go-verify: the token does not verify:", err)
		os.Exit(1)
	}
	for i := 0; i < 2000; i++ {
		_ = verify(key, token)
	}
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	n := 0
	for now := start; now.Before(deadline); now = time.Now() {
		if err := verify(key, token); err != nil {
			fmt.Fprintln(os.Stderr, "go-verify:", err)
			os.Exit(1)
		}
		n++
	}
	out, _ := json.Marshal(map[string]interface{}{"verifiesPerSecond": float64(n) / time.Since(start).Seconds()})
	fmt.Println(string(out))
}
