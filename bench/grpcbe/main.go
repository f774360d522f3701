// grpcbe: the gRPC backend of bench/h2_bench.py's gRPC unary benchmark. It
// serves grpc.health.v1.Health (Check answers SERVING; ghz calls it with
// health.proto) on one cleartext HTTP/2 (h2c) address, directly or through a
// proxy. It prints "listening ADDR" once the socket is bound and serves until
// SIGTERM/SIGINT.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("listen", "127.0.0.2:0", "address to serve gRPC (h2c) on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcbe:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.MaxConcurrentStreams(1000))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Stop()
	}()
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(ln); err != nil && err != grpc.ErrServerStopped {
		fmt.Fprintln(os.Stderr, "grpcbe:", err)
		os.Exit(1)
	}
}
