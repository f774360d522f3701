// otelcol-zw: a minimal OTLP collector for zerowire's tracing tests. It runs
// the OpenTelemetry Collector's own OTLP receiver (go.opentelemetry.io/
// collector/receiver/otlpreceiver: OTLP/HTTP protobuf and JSON on
// -http, gRPC off) and writes every batch of spans it accepts as one line of
// OTLP JSON (the collector's ptrace.JSONMarshaler) to -out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
)

func main() {
	endpoint := flag.String("http", "127.0.0.1:4318", "OTLP/HTTP listen address")
	out := flag.String("out", "spans.jsonl", "file that gets one OTLP JSON line per batch")
	flag.Parse()

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otelcol-zw:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	marshaler := &ptrace.JSONMarshaler{}
	next, err := consumer.NewTraces(func(_ context.Context, td ptrace.Traces) error {
		b, err := marshaler.MarshalTraces(td)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, err := f.Write(append(b, '\n')); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "otelcol-zw:", err)
		os.Exit(1)
	}

	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	cfg.Protocols.GRPC = configoptional.None[configgrpc.ServerConfig]()
	cfg.Protocols.HTTP.GetOrInsertDefault().ServerConfig.NetAddr.Endpoint = *endpoint
	set := receivertest.NewNopSettings(component.MustNewType("otlp"))
	rcv, err := factory.CreateTraces(context.Background(), set, cfg, next)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otelcol-zw: create:", err)
		os.Exit(1)
	}
	if err := rcv.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		fmt.Fprintln(os.Stderr, "otelcol-zw: start:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "otelcol-zw: listening on %s, writing %s\n", *endpoint, *out)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	_ = rcv.Shutdown(context.Background())
	mu.Lock()
	f.Close()
	mu.Unlock()
}
