//go:build tools

// Package tools pins ghz (the gRPC load generator bench/h2_bench.py runs for
// the gRPC unary benchmark) as a dependency of this wrapper module.
package tools

import _ "github.com/bojand/ghz/cmd/ghz"
