//go:build tools

// Package tools pins github.com/norwoodj/helm-docs so that
// `go build github.com/norwoodj/helm-docs/cmd/helm-docs` resolves from this
// module's go.mod/go.sum (built by e2e/peers/build-go-tool.sh, never linked
// into zerowire; it writes charts/zerowire/README.md).
package tools

import _ "github.com/norwoodj/helm-docs/cmd/helm-docs"
