// Wrapper module: pins the h2spec module whose cmd/h2spec the proxy's h2c
// conformance test uses (built by e2e/peers/build-go-tool.sh, never linked
// into zerowire).
module zerowire.local/tools/h2spec

go 1.26.0

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/summerwind/h2spec v2.2.1+incompatible // indirect
	golang.org/x/net v0.63.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
