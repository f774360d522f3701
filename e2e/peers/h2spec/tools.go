//go:build tools

// Package tools pins h2spec (the HTTP/2 conformance tester the proxy's h2c
// test runs) as a dependency of this wrapper module.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
