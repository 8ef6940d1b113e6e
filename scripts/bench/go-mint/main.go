// The go-macaroon baseline for minting (issue 6): Debian's
// golang-gopkg-macaroon.v2-dev minting the same token mintfs mints for the
// bench profile (identifier mintfs/v2/<key>/<random id>/<issued>, time-before
// plus the five grant caveats, V2 binary, base64url), through the library's
// ordinary API, in a loop for the given seconds.
//
//	go-mint SECONDS KEY_ID CAVEAT...
//
// Prints {"mintsPerSecond": N, "sample": TOKEN, "key": HEX} as one JSON line.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"gopkg.in/macaroon.v2"
)

func mint(rootKey []byte, keyID string, caveats []string, now time.Time) (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	identifier := fmt.Sprintf("mintfs/v2/%s/%s/%010d", keyID, base64.RawURLEncoding.EncodeToString(id), now.Unix())
	m, err := macaroon.New(rootKey, []byte(identifier), "mintfs", macaroon.V2)
	if err != nil {
		return "", err
	}
	expires := now.Add(5 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	if err := m.AddFirstPartyCaveat([]byte("time-before " + expires)); err != nil {
		return "", err
	}
	for _, caveat := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(caveat)); err != nil {
			return "", err
		}
	}
	data, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(data), nil
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: go-mint SECONDS KEY_ID CAVEAT...")
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[1], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-mint: SECONDS:", err)
		os.Exit(2)
	}
	keyID, caveats := os.Args[2], os.Args[3:]
	rootKey := make([]byte, 32)
	if _, err := rand.Read(rootKey); err != nil {
		fmt.Fprintln(os.Stderr, "go-mint:", err)
		os.Exit(1)
	}
	sample, err := mint(rootKey, keyID, caveats, time.Now())
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-mint:", err)
		os.Exit(1)
	}
	// Warm up, then count mints until the time is up.
	for i := 0; i < 2000; i++ {
		if _, err := mint(rootKey, keyID, caveats, time.Now()); err != nil {
			fmt.Fprintln(os.Stderr, "go-mint:", err)
			os.Exit(1)
		}
	}
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	n := 0
	for now := start; now.Before(deadline); now = time.Now() {
		if _, err := mint(rootKey, keyID, caveats, now); err != nil {
			fmt.Fprintln(os.Stderr, "go-mint:", err)
			os.Exit(1)
		}
		n++
	}
	out, _ := json.Marshal(map[string]interface{}{
		"mintsPerSecond": float64(n) / time.Since(start).Seconds(),
		"sample":         sample,
		"key":            hex.EncodeToString(rootKey),
	})
	fmt.Println(string(out))
}
